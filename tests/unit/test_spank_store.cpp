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
#include <thread>

#include "spank/store.hpp"

using namespace tck::spank;
using tck::Result;

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
    // The job directory is root's (here: ours) and holds only the store.
    auto dst = stat_of(t.store_dir() + "/job.42");
    CHECK((dst.st_mode & 07777) == 0711);
    CHECK(dst.st_uid == ::geteuid());
    CHECK((stat_of(t.store_dir()).st_mode & 07777) == 0755);
    CHECK((stat_of(t.store_dir() + "/.tierckpt").st_mode & 07777) == 0700);
    // The reservation, where only root writes.
    std::ifstream rec(t.store_dir() + "/.tierckpt/reserved/42");
    std::string line;
    REQUIRE(std::getline(rec, line));
    CHECK(line == "tierckpt-reservation 1 uid " + std::to_string(::getuid()) + " gid " + std::to_string(::getgid()) +
                      " bytes " + std::to_string(8ull << 20));
    auto listed = dir->list();
    REQUIRE(listed);
    REQUIRE(listed->size() == 1);
    CHECK((*listed)[0].bytes == 8ull << 20);
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
    CHECK_FALSE(exists(t.store_dir() + "/.tierckpt/expire/5"));
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
    SECTION("in a job directory tierckpt did not make: replaced, nothing followed") {
        auto dir = StoreDir::open(t.store_dir(), true);
        REQUIRE(dir);
        REQUIRE(::mkdir((t.store_dir() + "/job.12").c_str(), 0700) == 0);
        REQUIRE(::symlink((target + "/x").c_str(), (t.store_dir() + "/job.12/store").c_str()) == 0);
        auto r = dir->create_or_attach(request(12, 1ull << 20));
        INFO((r ? "" : r.status().message()));
        REQUIRE(r);
        CHECK(r->created);
        CHECK(S_ISREG(stat_of(r->path).st_mode));
        CHECK_FALSE(exists(target + "/x"));
    }
    SECTION("a link or a FIFO at the store file of a reservation: refused, never opened for I/O") {
        auto dir = StoreDir::open(t.store_dir(), true);
        REQUIRE(dir);
        auto first = dir->create_or_attach(request(13, 1ull << 20));
        REQUIRE(first);
        REQUIRE(::unlink(first->path.c_str()) == 0);
        REQUIRE(::mkfifo(first->path.c_str(), 0600) == 0);
        auto r = dir->create_or_attach(request(13, 1ull << 20));  // would hang on open without O_NONBLOCK
        REQUIRE_FALSE(r);
        CHECK(r.status().message().find("is not a regular file; refusing to use it as the store") !=
              std::string::npos);
        REQUIRE(::unlink(first->path.c_str()) == 0);
        REQUIRE(::symlink((target + "/x").c_str(), first->path.c_str()) == 0);
        r = dir->create_or_attach(request(13, 1ull << 20));
        REQUIRE_FALSE(r);
        CHECK(r.status().message().find("is a symbolic link") != std::string::npos);
        CHECK_FALSE(exists(target + "/x"));
    }
}

TEST_CASE("a store its user resized gets the reserved size back", "[spank][store]") {
    TmpShm t;
    auto dir = StoreDir::open(t.store_dir(), true);
    REQUIRE(dir);
    auto first = dir->create_or_attach(request(21, 4ull << 20));
    REQUIRE(first);
    for (std::uint64_t grown : {64ull << 20, 1ull << 20}) {
        REQUIRE(::truncate(first->path.c_str(), static_cast<off_t>(grown)) == 0);
        auto again = dir->create_or_attach(request(21, 4ull << 20));
        REQUIRE(again);
        CHECK_FALSE(again->created);
        CHECK(again->bytes == 4ull << 20);  // what TIERCKPT_STORE_BYTES and the memlock limit use
        auto st = stat_of(first->path);
        CHECK(static_cast<std::uint64_t>(st.st_size) == 4ull << 20);
        CHECK(static_cast<std::uint64_t>(st.st_blocks) * 512 >= 4ull << 20);
    }
    // A bigger step is still refused against the reservation, not the file.
    REQUIRE(::truncate(first->path.c_str(), static_cast<off_t>(64ull << 20)) == 0);
    auto larger = dir->create_or_attach(request(21, 16ull << 20));
    REQUIRE_FALSE(larger);
    CHECK(larger.status().message().find("holds 4 MiB") != std::string::npos);
}

TEST_CASE("freeing gives the memory back whatever the user linked or nested", "[spank][store]") {
    TmpShm t;
    auto dir = StoreDir::open(t.store_dir(), true);
    REQUIRE(dir);
    auto info = dir->create_or_attach(request(31, 4ull << 20));
    REQUIRE(info);
    // A hard link elsewhere would keep the pages after an unlink.
    std::string kept = t.dir + "/kept";
    REQUIRE(::link(info->path.c_str(), kept.c_str()) == 0);
    // A tree far deeper than any fixed limit, built as the user of an older
    // version could (the job directory was theirs then).
    std::string jd = t.store_dir() + "/job.31";
    {
        int fd = ::open(jd.c_str(), O_RDONLY | O_DIRECTORY);
        REQUIRE(fd >= 0);
        for (int depth = 0; depth < 600; ++depth) {
            REQUIRE(::mkdirat(fd, "d", 0700) == 0);
            int f = ::openat(fd, "f", O_CREAT | O_WRONLY, 0600);
            REQUIRE(f >= 0);
            ::close(f);
            int next = ::openat(fd, "d", O_RDONLY | O_DIRECTORY);
            ::close(fd);
            REQUIRE(next >= 0);
            fd = next;
        }
        ::close(fd);
    }
    REQUIRE(dir->free_job(31));
    CHECK_FALSE(exists(jd));
    CHECK(stat_of(kept).st_size == 0);  // the memory went with the truncation
    CHECK(stat_of(kept).st_blocks == 0);
    auto left = std::distance(std::filesystem::directory_iterator(t.store_dir() + "/.tierckpt/trash"),
                              std::filesystem::directory_iterator{});
    CHECK(left == 0);
    CHECK_FALSE(exists(t.store_dir() + "/.tierckpt/reserved/31"));
    // The job id is free for the next job at once.
    auto next = dir->create_or_attach(request(31, 1ull << 20));
    REQUIRE(next);
    CHECK(next->created);
}

TEST_CASE("an unreadable expiry mark never frees a store", "[spank][store]") {
    TmpShm t;
    auto dir = StoreDir::open(t.store_dir(), true);
    REQUIRE(dir);
    REQUIRE(dir->create_or_attach(request(41, 1ull << 20)));
    std::ofstream(t.store_dir() + "/.tierckpt/expire/41") << "garbage\n";
    auto freed = dir->free_expired(1ll << 40);
    REQUIRE(freed);
    CHECK(*freed == 0);
    CHECK(exists(t.store_dir() + "/job.41/store"));
}

TEST_CASE("reservation records are parsed strictly", "[spank][store]") {
    Reservation r{1000, 100, 8ull << 30};
    auto back = parse_reservation(format_reservation(r));
    REQUIRE(back);
    CHECK(back->uid == 1000);
    CHECK(back->gid == 100);
    CHECK(back->bytes == 8ull << 30);
    for (const char *bad : {"", "tierckpt-reservation 1 uid 1 gid 2 bytes 3", "tierckpt-reservation 1 uid 1 gid 2\n",
                            "tierckpt-reservation 2 uid 1 gid 2 bytes 3\n", "tierckpt-reservation 1 uid -1 gid 2 bytes 3\n",
                            "tierckpt-reservation 1 uid 1 gid 2 bytes 0\n",
                            "tierckpt-reservation 1 uid 1 gid 2 bytes 99999999999999999999999\n",
                            "tierckpt-reservation 1 uid 1 gid 2 bytes 3 extra\n"}) {
        INFO(bad);
        CHECK_FALSE(parse_reservation(bad));
    }
}

TEST_CASE("root: a store_dir squatted by another user is moved aside; another user's file is never truncated",
          "[spank][store]") {
    if (::geteuid() != 0) {
        WARN("needs root (chown to another uid): skipped");
        return;
    }
    TmpShm t;
    REQUIRE(::mkdir(t.store_dir().c_str(), 0777) == 0);
    REQUIRE(::chown(t.store_dir().c_str(), 65534, 65534) == 0);
    auto dir = StoreDir::open(t.store_dir(), true);
    INFO((dir ? "" : dir.status().message()));
    REQUIRE(dir);
    CHECK(stat_of(t.store_dir()).st_uid == 0);
    bool aside = false;
    for (const auto &e : std::filesystem::directory_iterator(t.dir)) {
        aside = aside || e.path().filename().string().rfind(".stores.squatted.65534.", 0) == 0;
    }
    CHECK(aside);

    // An older version's job directory (the user's) with another user's
    // file linked in as "store": removed, not truncated.
    std::string victim = t.dir + "/victim";
    std::ofstream(victim) << "another user's data";
    REQUIRE(::chown(victim.c_str(), 65533, 65533) == 0);
    std::string jd = t.store_dir() + "/job.51";
    REQUIRE(::mkdir(jd.c_str(), 0700) == 0);
    REQUIRE(::chown(jd.c_str(), 65534, 65534) == 0);
    REQUIRE(::link(victim.c_str(), (jd + "/store").c_str()) == 0);
    REQUIRE(dir->free_job(51));
    CHECK_FALSE(exists(jd));
    CHECK(stat_of(victim).st_size == 19);
}

TEST_CASE("every directory above store_dir must be root's and not writable by others", "[spank][store]") {
    TmpShm t;
    std::string open_dir = t.dir + "/open";
    REQUIRE(::mkdir(open_dir.c_str(), 0777) == 0);
    REQUIRE(::chmod(open_dir.c_str(), 0777) == 0);
    auto r = StoreDir::open(open_dir + "/stores", true);
    REQUIRE_FALSE(r);
    CHECK(r.status().message().find(open_dir + " is writable by others") != std::string::npos);
    CHECK_FALSE(exists(open_dir + "/stores"));
    // Sticky, like /dev/shm: others cannot replace what root made there.
    REQUIRE(::chmod(open_dir.c_str(), 01777) == 0);
    CHECK(StoreDir::open(open_dir + "/stores", true));
}

TEST_CASE("two steps of one job making its store at once: one makes it, the other attaches", "[spank][store]") {
    TmpShm t;
    REQUIRE(StoreDir::open(t.store_dir(), true));
    Result<StoreInfo> a = tck::error(TIERCKPT_ERR_INTERNAL, "unset"), b = tck::error(TIERCKPT_ERR_INTERNAL, "unset");
    std::thread other([&] {
        auto d = StoreDir::open(t.store_dir(), true);
        REQUIRE(d);
        a = d->create_or_attach(request(61, 32ull << 20));
    });
    {
        auto d = StoreDir::open(t.store_dir(), true);
        REQUIRE(d);
        b = d->create_or_attach(request(61, 32ull << 20));
    }
    other.join();
    REQUIRE(a);
    REQUIRE(b);
    CHECK(a->created != b->created);
    CHECK(a->path == b->path);
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

TEST_CASE("a job directory left without a reservation (a creation that died) is made again", "[spank][store]") {
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
