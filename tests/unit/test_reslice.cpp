// Elastic restore's planner (lib/restore/reslice.hpp): the bytes of saved
// slices that make up a rank's regions in a job of another size, and what
// it refuses.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

#include "lib/restore/elastic.hpp"
#include "lib/restore/reslice.hpp"

using namespace tck;
using store::RegionEntry;
using store::RegionKind;

namespace {

RegionEntry slice(const std::string &name, std::uint64_t offset, std::uint64_t bytes, std::uint64_t global) {
    return {name, bytes, {RegionKind::slice, offset, global}};
}
RegionEntry replicated(const std::string &name, std::uint64_t bytes) {
    return {name, bytes, {RegionKind::replicated, 0, bytes}};
}
RegionEntry opaque(const std::string &name, std::uint64_t bytes) { return {name, bytes, {}}; }

// N saved ranks: "step" replicated (region 0) and "w" cut evenly (region 1).
std::vector<std::vector<RegionEntry>> saved_even(std::uint32_t n, std::uint64_t global) {
    std::vector<std::vector<RegionEntry>> s(n);
    for (std::uint32_t r = 0; r < n; ++r) s[r] = {replicated("step", 8), slice("w", r * global / n, global / n, global)};
    return s;
}

// N saved ranks holding "w" cut evenly, nothing else.
std::vector<std::vector<RegionEntry>> saved_w(std::uint32_t n, std::uint64_t global) {
    std::vector<std::vector<RegionEntry>> s(n);
    for (std::uint32_t r = 0; r < n; ++r) s[r] = {slice("w", r * global / n, global / n, global)};
    return s;
}

std::string message(const Status &st) { return st ? std::string("ok") : st.message(); }

}  // namespace

TEST_CASE("6 saved ranks restored on 4: each new slice from the saved ones it overlaps", "[reslice]") {
    const auto saved = saved_even(6, 600);  // saved slices of 100 bytes
    // New rank 1 of 4 holds bytes [150, 300): half of saved rank 1's and all of rank 2's.
    auto p = plan_reslice(saved, {replicated("step", 8), slice("w", 150, 150, 600)}, 1);
    REQUIRE(p);
    REQUIRE(p->copies.size() == 3);
    CHECK(p->copies[0] == SliceCopy{1, 0, 0, 0, 0, 8});        // step from saved rank 1 % 6
    CHECK(p->copies[1] == SliceCopy{1, 1, 50, 1, 0, 50});      // saved rank 1's bytes [50, 100)
    CHECK(p->copies[2] == SliceCopy{2, 1, 0, 1, 50, 100});     // saved rank 2's whole slice
    CHECK(p->shards == std::vector<std::uint32_t>{1, 2});
    // The last new rank: bytes [450, 600), to the end of the array.
    auto last = plan_reslice(saved, {slice("w", 450, 150, 600), replicated("step", 8)}, 3);
    REQUIRE(last);
    REQUIRE(last->copies.size() == 3);
    CHECK(last->copies[0] == SliceCopy{4, 1, 50, 0, 0, 50});
    CHECK(last->copies[1] == SliceCopy{5, 1, 0, 0, 50, 100});
    // step from saved rank 4, whose shard it reads anyway (not 3 % 6: a
    // whole shard moved and verified for 8 bytes).
    CHECK(last->copies[2] == SliceCopy{4, 0, 0, 1, 0, 8});
    CHECK(last->shards == std::vector<std::uint32_t>{4, 5});
    // A rank with no slice bytes reads its replicated regions from saved
    // rank my_rank % 6, spreading those reads.
    auto none = plan_reslice(saved, {replicated("step", 8), slice("w", 600, 0, 600)}, 9);
    REQUIRE(none);
    REQUIRE(none->copies.size() == 1);
    CHECK(none->copies[0] == SliceCopy{3, 0, 0, 0, 0, 8});
    CHECK(none->shards == std::vector<std::uint32_t>{3});
    // After an elastic fetch, from the fetched shard (rank 3 % 6), read for it alone.
    auto fetched = plan_reslice(saved, {slice("w", 450, 150, 600), replicated("step", 8)}, 3, 3u);
    REQUIRE(fetched);
    CHECK(fetched->copies[2] == SliceCopy{3, 0, 0, 1, 0, 8});
    CHECK(fetched->shards == std::vector<std::uint32_t>{3, 4, 5});
}

TEST_CASE("4 saved ranks restored on 6, and uneven cuts", "[reslice]") {
    const auto saved = saved_w(4, 600);  // saved slices of 150 bytes
    // New rank 5 of 6 holds [500, 600): inside saved rank 3's [450, 600).
    auto p = plan_reslice(saved, {slice("w", 500, 100, 600)}, 5);
    REQUIRE(p);
    REQUIRE(p->copies.size() == 1);
    CHECK(p->copies[0] == SliceCopy{3, 0, 50, 0, 0, 100});
    // An uneven saved cut with an empty slice in the middle, and a new
    // slice that starts exactly where a saved one does.
    std::vector<std::vector<RegionEntry>> uneven{
        {slice("w", 0, 10, 100)}, {slice("w", 10, 0, 100)}, {slice("w", 10, 85, 100)}, {slice("w", 95, 5, 100)}};
    auto q = plan_reslice(uneven, {slice("w", 10, 90, 100)}, 0);
    REQUIRE(q);
    REQUIRE(q->copies.size() == 2);
    CHECK(q->copies[0] == SliceCopy{2, 0, 0, 0, 0, 85});
    CHECK(q->copies[1] == SliceCopy{3, 0, 0, 0, 85, 5});
    // An empty new slice reads nothing.
    auto e = plan_reslice(uneven, {slice("w", 100, 0, 100)}, 0);
    REQUIRE(e);
    CHECK(e->copies.empty());
    CHECK(e->shards.empty());
    // Every byte of the array read once, from where it was saved, whatever
    // the new cut: 7 ranks of the 4 saved.
    std::vector<int> read(600, 0);
    for (std::uint32_t r = 0; r < 7; ++r) {
        const std::uint64_t b = r * 600 / 7, end = (r + 1) * 600 / 7;
        auto c = plan_reslice(saved, {slice("w", b, end - b, 600)}, r);
        REQUIRE(c);
        for (const auto &x : c->copies) {
            REQUIRE(x.old_region == 0);
            REQUIRE(x.from + x.bytes <= 150);                                          // within the saved slice
            for (std::uint64_t i = 0; i < x.bytes; ++i) {
                CHECK(x.old_rank * 150 + x.from + i == b + x.to + i);                  // the same global byte
                ++read[b + x.to + i];
            }
        }
    }
    CHECK(std::count(read.begin(), read.end(), 1) == 600);
}

TEST_CASE("what elastic restore refuses, with the fix", "[reslice]") {
    const auto saved = saved_even(6, 600);
    CHECK(message(plan_reslice(saved, {opaque("own", 4)}, 0).status()) ==
          "region 'own' is opaque: it restores only onto the rank that saved it, in a job of as many ranks; register "
          "it with tierckpt_register_slice or tierckpt_register_replicated");
    CHECK(message(plan_reslice(saved, {slice("v", 0, 10, 10)}, 0).status()) ==
          "the checkpoint has no sliced or replicated region 'v'");
    CHECK(message(plan_reslice(saved, {slice("step", 0, 8, 8)}, 0).status()) ==
          "region 'step' was saved as replicated; it is registered as slice");
    CHECK(message(plan_reslice(saved, {slice("w", 0, 100, 700)}, 0).status()) ==
          "the global array 'w' was saved with 600 bytes; it is registered with 700");
    CHECK(message(plan_reslice(saved, {replicated("step", 16)}, 0).status()) ==
          "replicated region 'step' was saved with 8 bytes; 16 are registered");
    // Saved regions no rank of the job registers: refused, not left behind.
    CHECK(message(check_nothing_left_behind(saved, {"w"})) ==
          "the checkpoint holds the replicated region 'step', which no rank of this job registers: register every "
          "region the checkpoint was saved with");
    auto with_own = saved;
    with_own[3].push_back(opaque("own", 4));
    CHECK(message(check_nothing_left_behind(with_own, {"step", "w"})) ==
          "the checkpoint holds region 'own' of saved rank 3, which is opaque: it restores only in a job of 6 ranks");
    CHECK(check_nothing_left_behind(saved, {"step", "w"}));
    // An array some ranks hold no slice of (a pipeline stage's, an MoE
    // expert's): the rank that registers none of it still plans its own.
    auto staged = saved;
    for (auto &shard : staged) shard.push_back(replicated("stage0", 8));
    REQUIRE(plan_reslice(staged, {replicated("step", 8), slice("w", 0, 150, 600)}, 0));
    CHECK(check_nothing_left_behind(staged, {"step", "w", "stage0"}));
    // A saved layout that overlaps (a manifest someone rewrote): corrupt.
    auto broken = saved;
    broken[2][1] = slice("w", 150, 100, 600);
    auto r = plan_reslice(broken, {slice("w", 0, 600, 600)}, 0);
    REQUIRE_FALSE(r);
    CHECK(r.status().code() == TIERCKPT_ERR_CORRUPT);
    CHECK(message(r.status()) == "the checkpoint's layout: ranks 1 and 2 both hold bytes [150, 200) of the global "
                                 "array 'w'; slices must not overlap");
}

TEST_CASE("an elastic restore reads each saved shard's copies, its own node's first", "[reslice]") {
    // Version 12 of 3 saved ranks: rank 0 on node 0 with a copy on node 2,
    // rank 1 on node 2 only, rank 2 on node 4 with a damaged copy on node 0;
    // and version 8 (older) and a version 12 of another world size.
    auto e = [](std::uint64_t v, std::uint32_t rank, std::uint32_t holder, std::uint32_t world) {
        InventoryEntry x{};
        x.version = v;
        x.rank = rank;
        x.holder = holder;
        x.world = world;
        return x;
    };
    const std::vector<InventoryEntry> inv{e(12, 0, 0, 3), e(12, 0, 2, 3), e(12, 1, 2, 3), e(12, 2, 4, 3),
                                          e(12, 2, 0, 3), e(8, 1, 0, 3),  e(12, 1, 0, 5)};
    std::vector<char> bad(inv.size(), 0);
    bad[4] = 1;
    const auto copies = saved_copies(inv, bad, 12, 3);
    REQUIRE(copies.size() == 3);
    CHECK(copies[0] == std::vector<int>{0, 1});
    CHECK(copies[1] == std::vector<int>{2});
    CHECK(copies[2] == std::vector<int>{3});  // the damaged copy is left out
    // A reader on node 2 takes node 2's copy of rank 0; one on node 4 has
    // none there and the copies are spread by reader rank.
    CHECK(pick_copy(inv, copies[0], 2, 5) == 1);
    CHECK(pick_copy(inv, copies[0], 4, 4) == 0);
    CHECK(pick_copy(inv, copies[0], 4, 5) == 1);
    CHECK(pick_copy(inv, copies[2], 0, 0) == 3);
    bad[3] = 1;
    CHECK(saved_copies(inv, bad, 12, 3)[2].empty());  // rank 2's shard has no good copy: the version is out
    CHECK(pick_copy(inv, {}, 0, 0) == -1);
}

TEST_CASE("payload_ranges: the manifest, then each planned copy's bytes in the saved payload", "[reslice]") {
    // Saved shard: "step" (8 bytes, replicated) then "w" (100 bytes, a slice).
    const std::vector<RegionEntry> manifest{replicated("step", 8), slice("w", 100, 100, 600)};
    const std::uint64_t m = tck::store::manifest_bytes_for(manifest);
    CHECK(m == 16 + 2 * 88);  // the second form: 88 bytes a region
    std::vector<SliceCopy> copies{{1, 1, 50, 0, 0, 50}, {1, 0, 0, 1, 0, 8}};
    using Ranges = std::vector<std::pair<std::uint64_t, std::uint64_t>>;
    CHECK(payload_ranges(manifest, copies) == Ranges{{0, m}, {m + 8 + 50, m + 8 + 100}, {m, m + 8}});
    // A copy naming a region the manifest lacks adds nothing.
    CHECK(payload_ranges(manifest, {{1, 7, 0, 0, 0, 5}}) == Ranges{{0, m}});
}
