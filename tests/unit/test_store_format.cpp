// The node store format on a real tmpfs file.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "../../runtime/lib/store_format.hpp"

using namespace tck::store;

namespace {
struct TmpStore {
    std::string path;
    TmpStore() {
        char tmpl[] = "/dev/shm/tck-format-XXXXXX";
        int fd = ::mkstemp(tmpl);
        REQUIRE(fd >= 0);
        ::close(fd);
        ::unlink(tmpl);
        path = tmpl;
    }
    ~TmpStore() { ::unlink(path.c_str()); }
};

std::uint32_t take(StoreFile &f, std::uint32_t rank, std::uint64_t version, std::uint64_t bytes,
                   std::uint64_t protect_from) {
    auto guard = f.lock();
    auto s = f.allocate(rank, 4, version, bytes, protect_from, 1);
    INFO((s ? "" : s.status().message()));
    REQUIRE(s);
    return *s;
}

void finish(StoreFile &f, std::uint32_t slot, SlotState state) {
    SlotRecord r = f.read_record(slot);
    r.state = static_cast<std::uint32_t>(state);
    f.write_record(slot, r);
}
}  // namespace

TEST_CASE("a new store is formatted once and keeps its records when re-opened", "[store-format]") {
    TmpStore t;
    {
        auto f = StoreFile::open(t.path, 1 << 20, true);
        REQUIRE(f);
        CHECK_FALSE(f->header_valid());
        REQUIRE(f->format_if_needed(7));
        CHECK(f->header_valid());
        CHECK(f->header().job_id == 7);
        std::uint32_t s = take(*f, 0, 1, 1000, 0);
        finish(*f, s, SlotState::committed);
    }
    auto g = StoreFile::open(t.path, 0, false);
    REQUIRE(g);
    REQUIRE(g->format_if_needed(7));
    auto shards = g->shards();
    REQUIRE(shards.size() == 1);
    CHECK(shards[0].rec.version == 1);
    CHECK(shards[0].rec.offset % kSlotAlign == 0);
}

TEST_CASE("slots in flight and the committed version are never handed out again", "[store-format]") {
    TmpStore t;
    auto f = StoreFile::open(t.path, 1 << 20, true);
    REQUIRE(f);
    REQUIRE(f->format_if_needed(1));
    std::uint32_t a1 = take(*f, 0, 1, 1000, 0);  // rank 0 v1
    std::uint32_t b1 = take(*f, 1, 1, 1000, 0);  // rank 1 v1, while rank 0's is in flight
    CHECK(a1 != b1);
    finish(*f, a1, SlotState::committed);
    finish(*f, b1, SlotState::committed);
    std::uint32_t a2 = take(*f, 0, 2, 1000, 1);  // v1 committed: protected
    CHECK(a2 != a1);
    CHECK(a2 != b1);
    finish(*f, a2, SlotState::committed);
    std::uint32_t a3 = take(*f, 0, 3, 1000, 2);  // v1 is old now: rank 0 reuses its own slot
    CHECK(a3 == a1);
    // A save that died (writing) is reused by its own rank, not by others.
    std::uint32_t b2 = take(*f, 1, 2, 1000, 2);
    CHECK(b2 == b1);  // rank 1's v1 is older than 2
    std::uint32_t c = take(*f, 2, 3, 1000, 2);  // rank 2 may not take rank 0's v3 in flight
    CHECK(c != a3);
}

TEST_CASE("a torn record is invalid; a full store says how to fix it", "[store-format]") {
    TmpStore t;
    auto f = StoreFile::open(t.path, 256 * 1024, true);
    REQUIRE(f);
    REQUIRE(f->format_if_needed(1));
    std::uint32_t s = take(*f, 0, 1, 1000, 0);
    finish(*f, s, SlotState::complete);
    REQUIRE(f->shards().size() == 1);
    // Corrupt one byte of the record: it no longer counts.
    auto *raw = f->base() + kHeaderBytes + s * kRecordBytes;
    raw[40] ^= 0xff;
    CHECK(f->shards().empty());

    auto guard = f->lock();
    auto big = f->allocate(1, 4, 1, 10ull << 20, 0, 1);
    REQUIRE_FALSE(big);
    CHECK(big.status().code() == TIERCKPT_ERR_NO_MEMORY);
    CHECK(big.status().message().find("ask for more with --ckpt-mem") != std::string::npos);
}

TEST_CASE("opening a missing store without a size names the fix", "[store-format]") {
    auto f = StoreFile::open("/dev/shm/tck-does-not-exist", 0, false);
    REQUIRE_FALSE(f);
    CHECK(f.status().message().find("srun --ckpt-mem") != std::string::npos);
}

TEST_CASE("a replica being filled is never taken for the same rank's own save", "[store-format]") {
    TmpStore t;
    auto f = StoreFile::open(t.path, 1 << 20, true);
    REQUIRE(f);
    REQUIRE(f->format_if_needed(1));
    std::uint32_t replica = 0;
    {
        auto guard = f->lock();
        auto s = f->allocate(3, 4, 8, 1000, 4, 1, kReplica, 0);  // rank 0 receives rank 3 version 8
        REQUIRE(s);
        replica = *s;
    }
    std::uint32_t own = take(*f, 0, 8, 1000, 4);  // rank 0's own save meanwhile
    CHECK(own != replica);
    CHECK(f->read_record(replica).kind == kReplica);
    CHECK(f->read_record(replica).rank == 3u);
}
