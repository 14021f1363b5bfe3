// The node store on a real tmpfs (/dev/shm), as the current user: the
// same code slurmstepd runs as root, with the job's uid being ours.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "../../spank/store.hpp"

using namespace tck::spank;

namespace {

// A fresh parent directory on /dev/shm; the store_dir goes inside it.
struct TmpShm {
    std::string dir;
    TmpShm() {
        char tmpl[] = "/dev/shm/tck-unit-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        dir = tmpl;
    }
    ~TmpShm() {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
    std::string store_dir() const { return dir + "/stores"; }
};

StoreRequest request(std::uint64_t job, std::uint64_t bytes) {
    StoreRequest r;
    r.job_id = job;
    r.uid = ::getuid();
    r.gid = ::getgid();
    r.bytes = bytes;
    r.prefault = true;
    r.mem.total = 8ull << 30;
    r.mem.available = 4ull << 30;
    return r;
}

struct stat stat_of(const std::string &path) {
    struct stat st {};
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    return st;
}

bool exists(const std::string &path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

}  // namespace

TEST_CASE("meminfo is read", "[spank][store]") {
    auto m = read_meminfo();
    REQUIRE(m);
    CHECK(m->total > (64ull << 20));
    CHECK(m->available <= m->total);
    CHECK_FALSE(read_meminfo("/nonexistent/meminfo"));
}

TEST_CASE("a new store: exact size, allocated, private", "[spank][store]") {
    TmpShm t;
    auto dir = StoreDir::open(t.store_dir(), true);
    REQUIRE(dir);
    auto info = dir->create_or_attach(request(42, 8ull << 20));
    INFO((info ? "" : info.status().message()));
    REQUIRE(info);
    CHECK(info->created);
    CHECK(info->bytes == 8ull << 20);
    CHECK(info->path == t.store_dir() + "/job.42/store");

    auto st = stat_of(info->path);
    CHECK(S_ISREG(st.st_mode));
    CHECK((st.st_mode & 07777) == 0600);
    CHECK(st.st_uid == ::getuid());
    CHECK(static_cast<std::uint64_t>(st.st_size) == 8ull << 20);
    CHECK(static_cast<std::uint64_t>(st.st_blocks) * 512 >= 8ull << 20);  // memory committed up front
    auto dst = stat_of(t.store_dir() + "/job.42");
    CHECK((dst.st_mode & 07777) == 0700);
    CHECK((stat_of(t.store_dir()).st_mode & 07777) == 0755);
}

TEST_CASE("a later step re-attaches with the bytes intact", "[spank][store]") {
    TmpShm t;
    auto dir = StoreDir::open(t.store_dir(), true);
    REQUIRE(dir);
    auto first = dir->create_or_attach(request(7, 4ull << 20));
    REQUIRE(first);
    {
        int fd = ::open(first->path.c_str(), O_RDWR);
        REQUIRE(fd >= 0);
        REQUIRE(::pwrite(fd, "checkpoint", 10, 1 << 20) == 10);
        ::close(fd);
    }
    auto ino = stat_of(first->path).st_ino;

    auto again = StoreDir::open(t.store_dir(), true);
    REQUIRE(again);
    auto second = again->create_or_attach(request(7, 4ull << 20));
    REQUIRE(second);
    CHECK_FALSE(second->created);
    CHECK(stat_of(second->path).st_ino == ino);
    char buf[11] = {};
    int fd = ::open(second->path.c_str(), O_RDONLY);
    REQUIRE(::pread(fd, buf, 10, 1 << 20) == 10);
    ::close(fd);
    CHECK(std::string(buf) == "checkpoint");

    // Smaller: the whole existing store. Larger: refused, store untouched.
    auto smaller = again->create_or_attach(request(7, 1ull << 20));
    REQUIRE(smaller);
    CHECK(smaller->bytes == 4ull << 20);
    auto larger = again->create_or_attach(request(7, 16ull << 20));
    REQUIRE_FALSE(larger);
    CHECK(larger.status().message().find("holds 4 MiB") != std::string::npos);
    CHECK(larger.status().message().find("asks for 16 MiB") != std::string::npos);
    CHECK(stat_of(first->path).st_ino == ino);
}

TEST_CASE("not enough memory: clear error, nothing created", "[spank][store]") {
    TmpShm t;
    auto dir = StoreDir::open(t.store_dir(), true);
    REQUIRE(dir);
    auto req = request(9, 64ull << 20);
    req.mem.available = 16ull << 20;
    auto r = dir->create_or_attach(req);
    REQUIRE_FALSE(r);
    CHECK(r.status().code() == TIERCKPT_ERR_NO_MEMORY);
    CHECK(r.status().message().find("needs 64 MiB but this node has 16 MiB of memory available") != std::string::npos);
    CHECK_FALSE(exists(t.store_dir() + "/job.9"));
}

TEST_CASE("stores kept for a requeue are evicted for a running job", "[spank][store]") {
    TmpShm t;
    auto dir = StoreDir::open(t.store_dir(), true);
    REQUIRE(dir);
    REQUIRE(dir->create_or_attach(request(1, 8ull << 20)));
    REQUIRE(dir->create_or_attach(request(2, 8ull << 20)));
    REQUIRE(dir->mark_expiring(1, 4000000000));  // job 1 ended, waiting for a requeue
    auto req = request(3, 8ull << 20);
    req.mem.available = 4ull << 20;  // room only once job 1's store goes
    auto r = dir->create_or_attach(req);
    INFO((r ? "" : r.status().message()));
    REQUIRE(r);
    CHECK_FALSE(exists(t.store_dir() + "/job.1"));
    CHECK(exists(t.store_dir() + "/job.2/store"));  // a running job's store is never evicted
}

TEST_CASE("expiry: marks, clearing, freeing", "[spank][store]") {
    TmpShm t;
    auto dir = StoreDir::open(t.store_dir(), true);
    REQUIRE(dir);
    REQUIRE(dir->create_or_attach(request(5, 1ull << 20)));
    REQUIRE(dir->create_or_attach(request(6, 1ull << 20)));
    REQUIRE(dir->mark_expiring(5, 1000));
    REQUIRE(dir->mark_expiring(6, 3000));
    auto listed = dir->list();
    REQUIRE(listed);
    REQUIRE(listed->size() == 2);
    CHECK((*listed)[0].expires == 1000);
    CHECK((*listed)[0].bytes == 1ull << 20);

    auto freed = dir->free_expired(2000);
    REQUIRE(freed);
    CHECK(*freed == 1);
    CHECK_FALSE(exists(t.store_dir() + "/job.5"));
    CHECK_FALSE(exists(t.store_dir() + "/.expire/5"));
    CHECK(dir->has_job(6));

    REQUIRE(dir->clear_expiry(6));  // the job came back
    CHECK(*dir->free_expired(1ull << 40) == 0);
    CHECK(dir->has_job(6));
    REQUIRE(dir->free_job(6));
    CHECK_FALSE(dir->has_job(6));
}

TEST_CASE("freeing removes what the user put in the job directory, not what symlinks point to", "[spank][store]") {
    TmpShm t;
    auto dir = StoreDir::open(t.store_dir(), true);
    REQUIRE(dir);
    auto info = dir->create_or_attach(request(11, 1ull << 20));
    REQUIRE(info);
    std::string victim = t.dir + "/victim";
    std::ofstream(victim) << "keep me";
    std::string jd = t.store_dir() + "/job.11";
    REQUIRE(::mkdir((jd + "/sub").c_str(), 0700) == 0);
    std::ofstream(jd + "/sub/file") << "x";
    REQUIRE(::symlink(victim.c_str(), (jd + "/link").c_str()) == 0);
    REQUIRE(::symlink(t.dir.c_str(), (jd + "/sub/dirlink").c_str()) == 0);
    REQUIRE(dir->free_job(11));
    CHECK_FALSE(exists(jd));
    CHECK(exists(victim));
    CHECK(exists(t.store_dir()));
}

TEST_CASE("planted symlinks are refused and not followed", "[spank][store]") {
    TmpShm t;
    std::string target = t.dir + "/elsewhere";
    REQUIRE(::mkdir(target.c_str(), 0755) == 0);

    SECTION("at the store directory") {
        REQUIRE(::symlink(target.c_str(), t.store_dir().c_str()) == 0);
        auto dir = StoreDir::open(t.store_dir(), true);
        REQUIRE_FALSE(dir);
        CHECK(dir.status().message().find("is a symlink or not a directory") != std::string::npos);
    }
    SECTION("at the store file") {
        auto dir = StoreDir::open(t.store_dir(), true);
        REQUIRE(dir);
        REQUIRE(::mkdir((t.store_dir() + "/job.12").c_str(), 0700) == 0);
        REQUIRE(::symlink((target + "/x").c_str(), (t.store_dir() + "/job.12/store").c_str()) == 0);
        auto r = dir->create_or_attach(request(12, 1ull << 20));
        REQUIRE_FALSE(r);
        CHECK(r.status().message().find("is a symlink") != std::string::npos);
        CHECK_FALSE(exists(target + "/x"));
    }
    SECTION("a FIFO at the store file") {
        auto dir = StoreDir::open(t.store_dir(), true);
        REQUIRE(dir);
        REQUIRE(::mkdir((t.store_dir() + "/job.13").c_str(), 0700) == 0);
        REQUIRE(::mkfifo((t.store_dir() + "/job.13/store").c_str(), 0600) == 0);
        auto r = dir->create_or_attach(request(13, 1ull << 20));
        REQUIRE_FALSE(r);
        CHECK(r.status().message().find("not a plain file") != std::string::npos);
    }
}

TEST_CASE("the store directory must be private and on memory", "[spank][store]") {
    TmpShm t;
    REQUIRE(::mkdir(t.store_dir().c_str(), 0777) == 0);
    REQUIRE(::chmod(t.store_dir().c_str(), 0777) == 0);
    auto open_writable = StoreDir::open(t.store_dir(), true);
    REQUIRE_FALSE(open_writable);
    CHECK(open_writable.status().message().find("writable by others") != std::string::npos);

    char tmpl[] = "/var/tmp/tck-unit-XXXXXX";  // a disk file system here
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    std::string on_disk = std::string(tmpl) + "/stores";
    auto r = StoreDir::open(on_disk, true);
    std::error_code ec;
    std::filesystem::remove_all(tmpl, ec);
    REQUIRE_FALSE(r);
    CHECK(r.status().message().find("not on tmpfs or hugetlbfs") != std::string::npos);
}

TEST_CASE("a store cut short is completed; an empty one is made again", "[spank][store]") {
    TmpShm t;
    auto dir = StoreDir::open(t.store_dir(), true);
    REQUIRE(dir);
    REQUIRE(::mkdir((t.store_dir() + "/job.14").c_str(), 0700) == 0);
    int fd = ::open((t.store_dir() + "/job.14/store").c_str(), O_CREAT | O_RDWR, 0600);
    REQUIRE(fd >= 0);
    ::close(fd);  // empty: the step that made it died before allocating
    auto r = dir->create_or_attach(request(14, 2ull << 20));
    REQUIRE(r);
    CHECK(r->created);
    CHECK(r->bytes == 2ull << 20);
}
