#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "store/store_format.hpp"
#include "lib/transport/mr_key.hpp"
#include "lib/transport/msg_check.hpp"

using tck::TransportMsg;
namespace mc = tck::msgcheck;

namespace {

constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
constexpr std::uint64_t kStore = 1ull << 30;  // 1 GiB stores

// Rank 2 of 4 tells its partner (rank 0) that version 7 of its shard lies
// at 1 MiB in its store.
TransportMsg ready_from(std::uint32_t from) {
    TransportMsg m{};
    m.type = TransportMsg::ready;
    m.from = from;
    m.owner = from;
    m.version = 7;
    m.offset = 1u << 20;
    m.bytes = 64u << 20;
    m.nregions = 3;
    m.crc = 0x1234;
    return m;
}

TransportMsg done_from(std::uint32_t from, std::uint32_t owner, std::uint64_t version) {
    TransportMsg m{};
    m.type = TransportMsg::done;
    m.from = from;
    m.owner = owner;
    m.version = version;
    m.ok = 1;
    return m;
}

}  // namespace

TEST_CASE("range_in: ranges inside the store, no sum that wraps", "[msg_check]") {
    CHECK(mc::range_in(0, kStore, kStore));
    CHECK(mc::range_in(kStore, 0, kStore));
    CHECK(mc::range_in(kStore - 4096, 4096, kStore));
    CHECK_FALSE(mc::range_in(kStore - 4096, 4097, kStore));
    CHECK_FALSE(mc::range_in(kStore + 1, 0, kStore));
    // offset + bytes wraps to 4095: a naive "offset + bytes > size" would
    // take it for a small range at the start.
    CHECK_FALSE(mc::range_in(kMax, 4096, kStore));
    CHECK_FALSE(mc::range_in(4096, kMax, kStore));
    CHECK_FALSE(mc::range_in(kMax, kMax, kMax - 1));
}

TEST_CASE("every message must name a rank of the job other than this one, and a known type", "[msg_check]") {
    TransportMsg m = ready_from(2);
    CHECK(mc::check_header(m, 4, 0) == nullptr);
    m.from = 3;
    CHECK(mc::check_header(m, 4, 0) == nullptr);
    m.from = 4;  // == world
    CHECK(mc::check_header(m, 4, 0) != nullptr);
    m.from = 0xffffffffu;
    CHECK(mc::check_header(m, 4, 0) != nullptr);
    m.from = 0;  // this rank itself
    CHECK(mc::check_header(m, 4, 0) != nullptr);
    m.from = 2;
    for (std::uint32_t t : {0u, 5u, 0xffffffffu}) {
        m.type = t;
        CHECK(mc::check_header(m, 4, 0) != nullptr);
    }
    for (std::uint32_t t : {1u, 2u, 3u, 4u}) {
        m.type = t;
        CHECK(mc::check_header(m, 4, 0) == nullptr);
    }
    CHECK(std::string(mc::type_name(TransportMsg::done)) == "done");
    CHECK(std::string(mc::type_name(9)) == "unknown");
}

TEST_CASE("ready is acted on only from a rank this one keeps copies for, about a shard inside its store",
          "[msg_check]") {
    const std::vector<int> sources{2};  // rank 2 has this rank among its partners
    TransportMsg m = ready_from(2);
    CHECK(mc::check_ready(m, sources, kStore, kStore) == nullptr);

    SECTION("from a rank that does not copy to this one") {
        CHECK(mc::check_ready(ready_from(3), sources, kStore, kStore) != nullptr);
        CHECK(mc::check_ready(ready_from(2), {}, kStore, kStore) != nullptr);
    }
    SECTION("about another rank's shard") {
        m.owner = 3;
        CHECK(mc::check_ready(m, sources, kStore, kStore) != nullptr);
    }
    SECTION("offset + bytes past the sender's store, or wrapping around") {
        m.offset = kStore - m.bytes;
        CHECK(mc::check_ready(m, sources, kStore, kStore) == nullptr);  // ends at the last byte
        m.offset += 1;
        CHECK(mc::check_ready(m, sources, kStore, kStore) != nullptr);
        m.offset = kMax - 4095;  // offset + bytes wraps to a small number
        CHECK(mc::check_ready(m, sources, kStore, kStore) != nullptr);
        m.offset = 0;
        m.bytes = kMax;
        CHECK(mc::check_ready(m, sources, kStore, kStore) != nullptr);
    }
    SECTION("the sender's store is what bounds it, ours bounds the size") {
        m.offset = kStore;  // inside a 2 GiB sender store, past ours
        CHECK(mc::check_ready(m, sources, 2 * kStore, kStore) == nullptr);
        m.offset = 0;
        m.bytes = kStore + 4096;  // fits the sender's store, never a slot of ours
        CHECK(mc::check_ready(m, sources, 2 * kStore, kStore) != nullptr);
    }
    SECTION("region count: at least one, and the manifest inside the bytes") {
        m.nregions = 0;
        CHECK(mc::check_ready(m, sources, kStore, kStore) != nullptr);
        m.nregions = 2;
        m.bytes = tck::store::manifest_bytes(2);
        CHECK(mc::check_ready(m, sources, kStore, kStore) == nullptr);
        m.bytes -= 1;
        CHECK(mc::check_ready(m, sources, kStore, kStore) != nullptr);
        m.nregions = 0xffffffffu;
        m.bytes = 64u << 20;
        CHECK(mc::check_ready(m, sources, kStore, kStore) != nullptr);
    }
}

TEST_CASE("done must be about this rank's shard, ok 0 or 1", "[msg_check]") {
    CHECK(mc::check_done(done_from(1, 0, 7), 0) == nullptr);
    CHECK(mc::check_done(done_from(1, 2, 7), 0) != nullptr);
    TransportMsg m = done_from(1, 0, 7);
    m.ok = 0;
    CHECK(mc::check_done(m, 0) == nullptr);
    m.ok = 2;
    CHECK(mc::check_done(m, 0) != nullptr);
}

TEST_CASE("an acknowledgement counts once, only from a partner that owes it, only for the version in flight",
          "[msg_check]") {
    using O = mc::AckTally::Outcome;
    mc::AckTally none;  // no version checksummed yet: nothing counts
    CHECK(none.add(1, 0) == O::other_version);
    CHECK(none.count() == 0);

    mc::AckTally t(7, {1, 3});
    CHECK(t.owed() == 2);
    CHECK_FALSE(t.complete());
    CHECK(t.add(2, 7) == O::not_owed);  // a rank that keeps no copy
    CHECK(t.add(1, 6) == O::other_version);
    CHECK(t.count() == 0);
    CHECK(t.add(1, 7) == O::counted);
    CHECK(t.count() == 1);
    CHECK(t.add(1, 7) == O::duplicate);  // the same partner again: not counted
    CHECK(t.count() == 1);
    CHECK_FALSE(t.complete());
    CHECK(t.add(3, 7) == O::counted);
    CHECK(t.count() == 2);
    CHECK(t.complete());
    CHECK(t.add(3, 7) == O::duplicate);
    CHECK(t.count() == 2);

    mc::AckTally nobody(8, {});
    CHECK(nobody.complete());
    CHECK(nobody.add(1, 8) == O::not_owed);
}

TEST_CASE("a UCX pull request: a rank of the job, a bounded range inside this store", "[msg_check]") {
    constexpr std::uint64_t kPull = 128u << 20;
    CHECK(mc::check_pull_request(1, 4096, kPull, 4, 0, kStore, kPull) == nullptr);
    CHECK(mc::check_pull_request(4, 4096, kPull, 4, 0, kStore, kPull) != nullptr);  // from == world
    CHECK(mc::check_pull_request(0, 4096, kPull, 4, 0, kStore, kPull) != nullptr);  // from this rank
    CHECK(mc::check_pull_request(1, 4096, 0, 4, 0, kStore, kPull) != nullptr);
    CHECK(mc::check_pull_request(1, 0, kPull + 1, 4, 0, kStore, kPull) != nullptr);
    CHECK(mc::check_pull_request(1, kStore - kPull, kPull, 4, 0, kStore, kPull) == nullptr);
    CHECK(mc::check_pull_request(1, kStore - kPull + 1, kPull, 4, 0, kStore, kPull) != nullptr);
    CHECK(mc::check_pull_request(1, kMax - 4095, 8192, 4, 0, kStore, kPull) != nullptr);  // wraps
    CHECK(mc::check_pull_request(1, 0, 4096, 4, 0, 0, kPull) != nullptr);  // no store registered
}

TEST_CASE("a UCX piece lands only inside the pull it belongs to, at a piece boundary, whole", "[msg_check]") {
    constexpr std::uint64_t kPiece = 4u << 20;
    const std::uint64_t dst = 1u << 20, len = 2 * kPiece + 100;  // pieces: 4 MiB, 4 MiB, 100 bytes
    std::size_t index = 99;
    CHECK(mc::check_piece(dst, len, kPiece, dst, kPiece, kPiece, &index) == nullptr);
    CHECK(index == 0);
    CHECK(mc::check_piece(dst, len, kPiece, dst + kPiece, kPiece, kPiece, &index) == nullptr);
    CHECK(index == 1);
    CHECK(mc::check_piece(dst, len, kPiece, dst + 2 * kPiece, 100, 100, &index) == nullptr);
    CHECK(index == 2);

    index = 99;
    CHECK(mc::check_piece(dst, len, kPiece, dst - 1, kPiece, kPiece, &index) != nullptr);  // before the pull
    CHECK(mc::check_piece(dst, len, kPiece, dst + len, 100, 100, &index) != nullptr);       // after it
    CHECK(mc::check_piece(dst, len, kPiece, 0, kPiece, kPiece, &index) != nullptr);         // elsewhere in the store
    CHECK(mc::check_piece(dst, len, kPiece, dst + 4096, kPiece, kPiece, &index) != nullptr);  // not on a boundary
    CHECK(mc::check_piece(dst, len, kPiece, dst + 2 * kPiece, kPiece, kPiece, &index) != nullptr);  // past the end
    CHECK(mc::check_piece(dst, len, kPiece, dst, kPiece - 1, kPiece - 1, &index) != nullptr);  // short
    CHECK(mc::check_piece(dst, len, kPiece, dst, kPiece, kPiece - 1, &index) != nullptr);  // says more than it carries
    CHECK(mc::check_piece(dst, len, kPiece, kMax, kPiece, kPiece, &index) != nullptr);
    CHECK(mc::check_piece(dst, 0, kPiece, dst, 0, 0, &index) != nullptr);  // an empty pull has no pieces
    CHECK(index == 99);  // untouched on rejection
}

TEST_CASE("drops are told at once, then at most once an interval with a count", "[msg_check]") {
    mc::DropLog d(1000);
    CHECK(d.note(0.0));
    CHECK(d.untold() == 0);
    CHECK_FALSE(d.note(10.0));
    CHECK_FALSE(d.note(999.0));
    CHECK(d.note(1000.0));
    CHECK(d.untold() == 2);
    CHECK(d.note(5000.0));
    CHECK(d.untold() == 0);
}

TEST_CASE("a requested memory key fits the domain's key size", "[msg_check]") {
    constexpr std::uint64_t r = 0x8877665544332211ull;
    CHECK(tck::fit_mr_key(r, 8) == r);
    CHECK(tck::fit_mr_key(r, 16) == r);  // raw keys: a 64-bit request is what fi_mr_reg takes
    CHECK(tck::fit_mr_key(r, 0) == r);   // not given
    CHECK(tck::fit_mr_key(r, 4) == 0x44332211ull);
    CHECK(tck::fit_mr_key(r, 2) == 0x2211ull);
    CHECK(tck::fit_mr_key(r, 1) == 0x11ull);
}
