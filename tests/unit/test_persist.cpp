// The persistent tier's files, on real directories: the build tree's file
// system (O_DIRECT) and tmpfs (O_DIRECT only on newer kernels; else the
// fallback).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "store/crc32c.hpp"
#include "store/persist.hpp"
#include "store/store_format.hpp"

using namespace tck;
using namespace tck::persist;

namespace {

struct TmpDir {
    std::string path;
    explicit TmpDir(const char *base) {
        std::string t = std::string(base) + "/tck-persist-XXXXXX";
        std::vector<char> buf(t.begin(), t.end());
        buf.push_back('\0');
        REQUIRE(::mkdtemp(buf.data()) != nullptr);
        char *abs = ::realpath(buf.data(), nullptr);
        REQUIRE(abs != nullptr);
        path = abs;
        std::free(abs);
    }
    ~TmpDir() { (void)!std::system(("rm -rf '" + path + "'").c_str()); }
};

std::vector<std::uint8_t> pattern(std::size_t n, unsigned seed) {
    std::vector<std::uint8_t> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>((i * 131 + seed * 7) >> 3);
    return v;
}

ShardMeta meta_for(std::uint32_t rank, std::uint32_t world, std::uint64_t version, const std::vector<std::uint8_t> &d) {
    ShardMeta m;
    m.rank = rank;
    m.world = world;
    m.version = version;
    m.bytes = d.size();
    m.crc = crc32c(d.data(), d.size());
    m.job_id = 42;
    return m;
}

mode_t mode_of(const std::string &p) {
    struct stat st {};
    REQUIRE(::lstat(p.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

bool exists(const std::string &p) {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0;
}

// Writes all `world` shards of `version` and its manifest.
void write_version(Dir &d, std::uint64_t version, std::uint32_t world, std::size_t bytes) {
    Manifest m;
    m.version = version;
    m.world = world;
    m.job_id = 42;
    for (std::uint32_t r = 0; r < world; ++r) {
        auto data = pattern(bytes, r + static_cast<unsigned>(version));
        auto meta = meta_for(r, world, version, data);
        Status st = d.write_shard(meta, data.data(), data.size(), true);
        INFO(st.message());
        REQUIRE(st);
        m.shards.push_back({meta.bytes, meta.crc, true});
    }
    REQUIRE(d.write_manifest(m));
}

}  // namespace

TEST_CASE("persistent tier: version directory names", "[persist]") {
    CHECK(version_dir_name(12) == "v000000000012");
    std::uint64_t v = 0;
    CHECK(parse_version_dir("v000000000012", v));
    CHECK(v == 12);
    CHECK(parse_version_dir(version_dir_name(12345678901234ull), v));
    CHECK(v == 12345678901234ull);
    for (const char *bad : {"v12", "v00000000001x", "x000000000012", "v0000000000012", ""}) {
        INFO(bad);
        CHECK_FALSE(parse_version_dir(bad, v));
    }
}

TEST_CASE("persistent tier: a manifest reads back; an altered or cut one is refused", "[persist]") {
    Manifest m;
    m.version = 7;
    m.world = 3;
    m.job_id = 99;
    m.shards = {{100, 0xdeadbeef, true}, {200, 1, true}, {300, 0x0badf00d, true}};
    std::string text = format_manifest(m);
    auto back = parse_manifest(text);
    INFO((back ? "" : back.status().message()));
    REQUIRE(back);
    CHECK(back->version == 7);
    CHECK(back->world == 3);
    CHECK(back->job_id == 99);
    REQUIRE(back->shards.size() == 3);
    CHECK(back->shards[2].bytes == 300);
    CHECK(back->shards[2].crc == 0x0badf00d);

    std::string altered = text;
    altered[altered.find("bytes 200") + 6] = '3';
    auto a = parse_manifest(altered);
    REQUIRE_FALSE(a);
    CHECK(a.status().code() == TIERCKPT_ERR_CORRUPT);
    CHECK(a.status().message().find("checksum does not match") != std::string::npos);

    auto cut = parse_manifest(text.substr(0, text.size() / 2));
    REQUIRE_FALSE(cut);
    CHECK(cut.status().message().find("no end line") != std::string::npos);
}

TEST_CASE("persistent tier: a manifest's claims are bounded before anything is sized by them", "[persist]") {
    // A world of 16M ranks in a manifest of a few lines: refused, not a
    // 400 MB vector. A valid CRC, so only the bound can refuse it.
    std::string text = "tierckpt-persist 1\nversion 1\nworld 16777216\njob 1\nwritten x\nshard 0 bytes 1 crc32c 00000000\n";
    text += fmt::format("end crc32c {:08x}\n", crc32c(text.data(), text.size()));
    auto r = parse_manifest(text);
    REQUIRE_FALSE(r);
    CHECK(r.status().message().find("bad world size") != std::string::npos);

    // A shard the manifest says is 1 TiB: verify reads what is there in
    // pieces and refuses on the size, without allocating it.
    TmpDir tmp("/dev/shm");
    auto d = Dir::open(tmp.path, false);
    REQUIRE(d);
    auto data = pattern(5000, 1);
    REQUIRE(d->write_shard(meta_for(0, 1, 3, data), data.data(), data.size(), true));
    ShardEntry huge{1ull << 40, 0, true};
    Status v = d->verify_shard(3, 0, huge);
    REQUIRE_FALSE(v);
    CHECK(v.message().find("its manifest says 1099511627776") != std::string::npos);
    ShardEntry right{data.size(), crc32c(data.data(), data.size()), true};
    CHECK(d->verify_shard(3, 0, right));
    ShardEntry wrong_crc{data.size(), right.crc ^ 1, true};
    CHECK_FALSE(d->verify_shard(3, 0, wrong_crc));
}

TEST_CASE("persistent tier: writing is refused in another user's directory, root's writes included", "[persist]") {
    if (::geteuid() != 0) {
        WARN("needs root (chown to another uid): skipped");
        return;
    }
    TmpDir tmp("/dev/shm");
    REQUIRE(::chown(tmp.path.c_str(), 65534, 65534) == 0);
    auto w = Dir::open(tmp.path, true);
    REQUIRE_FALSE(w);
    CHECK(w.status().message().find("belongs to uid 65534, not to you (uid 0)") != std::string::npos);
    CHECK(Dir::open(tmp.path, false, true));  // looking is allowed
}

TEST_CASE("persistent tier: shards are written, read back and checked", "[persist]") {
    // The build tree (a disk file system: O_DIRECT) and tmpfs (no O_DIRECT).
    for (const char *base : {".", "/dev/shm"}) {
        INFO(base);
        TmpDir tmp(base);
        std::string root = tmp.path + "/a/b/run";  // missing parents are made
        auto d = Dir::open(root, true);
        INFO((d ? "" : d.status().message()));
        REQUIRE(d);
        CHECK(mode_of(root) == 0700);
        // An odd size, from a buffer that is not page aligned.
        std::vector<std::uint8_t> buf = pattern(5 * 1024 * 1024 + 123 + 1, 1);
        std::vector<std::uint8_t> data(buf.begin() + 1, buf.end());
        auto meta = meta_for(0, 1, 12, data);
        WriteStats ws;
        Status st = d->write_shard(meta, data.data(), data.size(), true, &ws);
        INFO(st.message());
        REQUIRE(st);
        std::string vdir = root + "/v000000000012";
        CHECK(mode_of(vdir) == 0700);
        CHECK(mode_of(vdir + "/shard.0") == 0600);
        CHECK(mode_of(vdir + "/shard.0.meta") == 0600);
        if (std::string(base) == ".") CHECK(ws.direct);  // ext4, xfs: yes (tmpfs only since Linux 6.6)
        auto side = d->read_sidecar(12, 0);
        REQUIRE(side);
        CHECK(side->crc == meta.crc);
        CHECK(side->bytes == data.size());
        // Not complete before its manifest.
        CHECK_FALSE(d->newest());
        CHECK_FALSE(d->read_manifest(12));
        auto done = d->complete_from_sidecars(12, 42);
        REQUIRE(done);
        CHECK(*done);
        auto m = d->newest();
        REQUIRE(m);
        CHECK(m->version == 12);
        auto back = d->read_shard(12, 0, m->shards[0]);
        REQUIRE(back);
        CHECK(*back == data);

        // Truncated, then altered: both caught.
        REQUIRE(::truncate((vdir + "/shard.0").c_str(), 4096) == 0);
        auto t = d->read_shard(12, 0, m->shards[0]);
        REQUIRE_FALSE(t);
        CHECK(t.status().code() == TIERCKPT_ERR_CORRUPT);
        CHECK(t.status().message().find("truncated") != std::string::npos);
        REQUIRE(d->write_shard(meta, data.data(), data.size(), true));
        {
            int fd = ::open((vdir + "/shard.0").c_str(), O_WRONLY);
            REQUIRE(fd >= 0);
            REQUIRE(::pwrite(fd, "\xff", 1, 1000) == 1);
            ::close(fd);
        }
        auto f = d->read_shard(12, 0, m->shards[0]);
        REQUIRE_FALSE(f);
        CHECK(f.status().message().find("checksum mismatch") != std::string::npos);
    }
}

TEST_CASE("persistent tier: a shard that changes while written leaves nothing behind", "[persist]") {
    TmpDir tmp(".");
    auto d = Dir::open(tmp.path, false);
    REQUIRE(d);
    auto data = pattern(100000, 3);
    auto meta = meta_for(1, 2, 5, data);
    meta.crc ^= 1;  // what the store's record says no longer matches the bytes
    Status st = d->write_shard(meta, data.data(), data.size(), true);
    REQUIRE_FALSE(st);
    CHECK(st.code() == TIERCKPT_ERR_CORRUPT);
    auto all = d->list();
    REQUIRE(all);
    REQUIRE(all->size() == 1);
    CHECK(all->at(0).shard_files.empty());
    CHECK_FALSE(all->at(0).complete);
    CHECK(std::system(("test -z \"$(ls -A '" + tmp.path + "/v000000000005')\"").c_str()) == 0);
}

TEST_CASE("persistent tier: a version is complete only when every shard is there", "[persist]") {
    TmpDir tmp(".");
    auto d = Dir::open(tmp.path, false);
    REQUIRE(d);
    for (std::uint32_t r : {2u, 0u}) {
        auto data = pattern(8192 + r, r);
        REQUIRE(d->write_shard(meta_for(r, 3, 9, data), data.data(), data.size(), true));
        auto done = d->complete_from_sidecars(9, 0);
        REQUIRE(done);
        CHECK_FALSE(*done);
    }
    auto data = pattern(8193, 1);
    REQUIRE(d->write_shard(meta_for(1, 3, 9, data), data.data(), data.size(), true));
    auto done = d->complete_from_sidecars(9, 0);
    REQUIRE(done);
    CHECK(*done);
    auto m = d->read_manifest(9);
    REQUIRE(m);
    CHECK(m->world == 3);
    CHECK(m->job_id == 42);
    CHECK(m->shards[1].bytes == 8193);
    CHECK(m->shards[1].crc == crc32c(data.data(), data.size()));
}

TEST_CASE("persistent tier: retention keeps the newest K complete versions", "[persist]") {
    TmpDir tmp(".");
    auto d = Dir::open(tmp.path, false);
    REQUIRE(d);
    for (std::uint64_t v : {1, 3, 4, 5}) write_version(*d, v, 2, 5000);
    // Incomplete: 2 (older than the newest complete: dead) and 7 (newer: a
    // flush in progress).
    for (std::uint64_t v : {2, 7}) {
        auto data = pattern(5000, 0);
        REQUIRE(d->write_shard(meta_for(0, 2, v, data), data.data(), data.size(), true));
    }
    REQUIRE(d->retain(2));
    auto all = d->list();
    REQUIRE(all);
    std::vector<std::uint64_t> left;
    for (const auto &vi : *all) left.push_back(vi.version);
    CHECK(left == std::vector<std::uint64_t>{4, 5, 7});
    CHECK(d->newest()->version == 5);
    // A removed version's files are gone with it.
    CHECK_FALSE(exists(tmp.path + "/v000000000001"));
}

TEST_CASE("persistent tier: failures name the path and keep older versions", "[persist]") {
    TmpDir tmp(".");
    std::string root = tmp.path + "/run";
    auto d = Dir::open(root, true);
    REQUIRE(d);
    write_version(*d, 4, 1, 10000);

    SECTION("a symlink where a version directory goes is not followed") {
        TmpDir elsewhere(".");
        REQUIRE(::symlink(elsewhere.path.c_str(), (root + "/v000000000008").c_str()) == 0);
        auto data = pattern(10000, 8);
        Status st = d->write_shard(meta_for(0, 1, 8, data), data.data(), data.size(), true);
        REQUIRE_FALSE(st);
        CHECK(st.message().find("symlink") != std::string::npos);
        CHECK(std::system(("test -z \"$(ls -A '" + elsewhere.path + "')\"").c_str()) == 0);
    }
    SECTION("the directory removed underneath") {
        REQUIRE(std::system(("rm -rf '" + root + "'").c_str()) == 0);
        auto data = pattern(10000, 8);
        Status st = d->write_shard(meta_for(0, 1, 8, data), data.data(), data.size(), true);
        REQUIRE_FALSE(st);
        CHECK(st.message().find(root) != std::string::npos);
        auto again = Dir::open(root, false);
        REQUIRE_FALSE(again);
        CHECK(again.status().message().find("does not exist") != std::string::npos);
    }
    SECTION("a file where the shard's temporary goes does not hurt the older version") {
        auto data = pattern(10000, 8);
        REQUIRE(d->write_shard(meta_for(0, 1, 8, data), data.data(), data.size(), true));
        CHECK(d->newest()->version == 4);  // 8 has no manifest
        REQUIRE(d->retain(1));
        CHECK(d->newest()->version == 4);
        CHECK(d->read_shard(4, 0, d->newest()->shards[0]));
    }
}

TEST_CASE("persistent tier: the end-of-job flush writes a store's newest committed version", "[persist]") {
    TmpDir tmp(".");
    char tmpl[] = "/dev/shm/tck-scavenge-XXXXXX";
    int fd = ::mkstemp(tmpl);
    REQUIRE(fd >= 0);
    ::close(fd);
    ::unlink(tmpl);
    std::string store_path = tmpl;
    std::string dir = tmp.path + "/run";
    {
        auto f = store::StoreFile::open(store_path, 8 << 20, false);
        REQUIRE(f);
        REQUIRE(f->format_if_needed(77));
        CHECK_FALSE(f->persist_info());
        REQUIRE(f->set_persist_info({dir, 2, 5}));
        auto pi = f->persist_info();
        REQUIRE(pi);
        CHECK(pi->dir == dir);
        CHECK(pi->keep == 2u);
        CHECK(pi->every == 5u);
        CHECK_FALSE(f->set_persist_info({"/" + std::string(store::kPersistDirBytes, 'x'), 1, 1}));
        // Two ranks, versions 4 (committed) and 8 (committed: the newest).
        for (std::uint64_t v : {4, 8}) {
            for (std::uint32_t r = 0; r < 2; ++r) {
                auto guard = f->lock();
                auto slot = f->allocate(r, 2, v, 3000 + r, 0, 1);
                REQUIRE(slot);
                auto rec = f->read_record(*slot);
                auto data = pattern(rec.payload_bytes, static_cast<unsigned>(v + r));
                std::memcpy(f->base() + rec.offset, data.data(), data.size());
                rec.payload_crc = crc32c(data.data(), data.size());
                rec.state = static_cast<std::uint32_t>(store::SlotState::committed);
                f->write_record(*slot, rec);
            }
            f->set_committed_hint(v);
        }
    }
    auto r = scavenge(store_path, "", 0, {});
    ::unlink(store_path.c_str());
    INFO((r ? r->note : r.status().message()));
    REQUIRE(r);
    CHECK(r->version == 8);
    CHECK(r->written == 2);
    CHECK(r->complete);
    auto d = Dir::open(dir, false);
    REQUIRE(d);
    auto m = d->newest();
    REQUIRE(m);
    CHECK(m->version == 8);
    CHECK(m->job_id == 77);
    auto back = d->read_shard(8, 1, m->shards[1]);
    REQUIRE(back);
    CHECK(*back == pattern(3001, 9));
}

TEST_CASE("persistent tier: the end-of-job flush does nothing when DIR is as new, and obeys persist_dirs",
          "[persist]") {
    TmpDir tmp(".");
    std::string store_path = tmp.path + "/store";  // any file system will do for this
    std::string dir = tmp.path + "/run";
    {
        auto f = store::StoreFile::open(store_path, 4 << 20, false);
        REQUIRE(f);
        REQUIRE(f->format_if_needed(1));
        REQUIRE(f->set_persist_info({dir, 3, 1}));
        auto guard = f->lock();
        auto slot = f->allocate(0, 1, 6, 100, 0, 1);
        REQUIRE(slot);
        auto rec = f->read_record(*slot);
        rec.payload_crc = crc32c(f->base() + rec.offset, rec.payload_bytes);
        rec.state = static_cast<std::uint32_t>(store::SlotState::committed);
        f->write_record(*slot, rec);
    }
    {
        auto f = store::StoreFile::open(store_path, 0, false);
        REQUIRE(f);
        f->set_committed_hint(6);
    }
    auto refused = scavenge(store_path, "", 0, {"/lustre"});
    REQUIRE_FALSE(refused);
    CHECK(refused.status().message().find("not below a directory the admin allows") != std::string::npos);
    auto first = scavenge(store_path, "", 0, {tmp.path});
    REQUIRE(first);
    CHECK(first->complete);
    CHECK(first->written == 1);
    auto second = scavenge(store_path, "", 0, {});
    REQUIRE(second);
    CHECK(second->written == 0);
    CHECK(second->note.find("nothing to do") != std::string::npos);
}
