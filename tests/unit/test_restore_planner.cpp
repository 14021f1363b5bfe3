// The restore planner (lib/restore/planner.hpp) on inventories as the job's
// node stores would report them. The job: 4 ranks on 2 nodes (ranks 0,1 on
// the node led by rank 0; ranks 2,3 on the node led by rank 2), one replica
// per shard on the other node.
#include <catch2/catch.hpp>

#include "lib/restore/planner.hpp"

using namespace tck;

namespace {

const std::vector<int> kLeaders{0, 0, 2, 2};

// A shard of rank `rank`, version `v`, kept in the store of the node led by
// `holder`; committed by its owner.
InventoryEntry shard(std::uint64_t v, std::uint32_t rank, std::uint32_t holder, bool committed = true) {
    return InventoryEntry{v, 1000, rank, holder, rank, 0x1234u + rank, committed ? 1u : 0u, 2, 4096};
}

// Version v whole: every rank's own copy, and a replica on the other node.
std::vector<InventoryEntry> whole(std::uint64_t v) {
    std::vector<InventoryEntry> inv;
    for (std::uint32_t r = 0; r < 4; ++r) inv.push_back(shard(v, r, r < 2 ? 0 : 2));
    for (std::uint32_t r = 0; r < 4; ++r) inv.push_back(shard(v, r, r < 2 ? 2 : 0));
    return inv;
}

// Only what the node led by `holder` keeps.
std::vector<InventoryEntry> surviving(const std::vector<InventoryEntry> &inv, std::uint32_t holder) {
    std::vector<InventoryEntry> out;
    for (const auto &e : inv) {
        if (e.holder == holder) out.push_back(e);
    }
    return out;
}

}  // namespace

TEST_CASE("a whole version: every rank reads its own node's copy", "[restore_planner]") {
    Planner p(whole(7), {}, kLeaders);
    CHECK(p.candidates() == std::vector<std::uint64_t>{7});
    auto plan = p.plan(7);
    REQUIRE(plan);
    CHECK(plan->entry == std::vector<int>{0, 1, 2, 3});  // the own copies come first in whole()
    CHECK_FALSE(plan->uses_persistent());
    CHECK_FALSE(p.plan(6));  // not listed at all
}

TEST_CASE("a lost node: its ranks read the replicas the survivor keeps", "[restore_planner]") {
    // The node led by rank 2 is gone (or replaced by an empty one).
    Planner p(surviving(whole(7), 0), {}, kLeaders);
    auto plan = p.plan(7);
    REQUIRE(plan);
    const auto &inv = p.entries();
    for (int r = 0; r < 4; ++r) {
        const auto &e = inv[static_cast<std::size_t>(plan->entry[static_cast<std::size_t>(r)])];
        CHECK(e.rank == static_cast<std::uint32_t>(r));
        CHECK(e.holder == 0u);
    }
    // Without replicas a lost node loses the version; an older one that the
    // survivor holds whole (both nodes' shards were copied there) is next.
    std::vector<InventoryEntry> no_replicas;
    for (const auto &e : whole(7)) {
        if (e.holder == 0 && e.rank < 2) no_replicas.push_back(e);
    }
    for (const auto &e : surviving(whole(5), 0)) no_replicas.push_back(e);
    Planner q(no_replicas, {}, kLeaders);
    CHECK(q.candidates() == std::vector<std::uint64_t>{7, 5});
    CHECK_FALSE(q.plan(7));
    CHECK(q.plan(5));
    CHECK(q.lost_ranks(7) == "2,3");
}

TEST_CASE("a corrupted copy is left out for the next one", "[restore_planner]") {
    Planner p(whole(7), {}, kLeaders);
    p.exclude_copy(1);  // rank 1's own copy
    auto plan = p.plan(7);
    REQUIRE(plan);
    CHECK(plan->entry == std::vector<int>{0, 5, 2, 3});  // rank 1 reads its replica on the other node
    p.exclude_copy(5);  // and that one is bad too
    CHECK_FALSE(p.plan(7));
    CHECK(p.lost_ranks(7) == "1");
    p.exclude_copy(-1);  // "nothing found bad" changes nothing
    p.exclude_copy(99);
    CHECK(p.lost_ranks(7) == "1");
}

TEST_CASE("a version complete only with the persistent tier", "[restore_planner]") {
    // Memory holds rank 0 and 1's shards of version 9; the persistent tier
    // holds version 9 whole.
    std::vector<InventoryEntry> inv = surviving(whole(9), 0);
    inv.erase(std::remove_if(inv.begin(), inv.end(), [](const InventoryEntry &e) { return e.rank >= 2; }),
              inv.end());
    Planner p(inv, {9}, kLeaders);
    auto plan = p.plan(9);
    REQUIRE(plan);
    CHECK(plan->uses_persistent());
    CHECK(plan->entry[0] >= 0);
    CHECK(plan->entry[1] >= 0);
    CHECK(plan->entry[2] == Plan::kFromPersistent);
    CHECK(plan->entry[3] == Plan::kFromPersistent);
    // A damaged shard there: the version is out.
    p.exclude_persistent(9);
    CHECK_FALSE(p.plan(9));
    // A version only the persistent tier holds is a candidate too.
    Planner only_disk({}, {4, 8}, kLeaders);
    CHECK(only_disk.candidates() == std::vector<std::uint64_t>{8, 4});
    auto disk_plan = only_disk.plan(8);
    REQUIRE(disk_plan);
    CHECK(disk_plan->entry == std::vector<int>(4, Plan::kFromPersistent));
}

TEST_CASE("nothing complete: the verdict says what was lost, or lets the job start fresh", "[restore_planner]") {
    RestoreFacts facts;
    facts.world = 4;
    // A fresh job: nothing anywhere, start from scratch.
    CHECK(verdict_nothing_complete(Planner({}, {}, kLeaders), facts).is_ok());
    // Version 7 was committed, both copies of ranks 2 and 3 are gone.
    std::vector<InventoryEntry> inv;
    for (const auto &e : whole(7)) {
        if (e.rank < 2) inv.push_back(e);
    }
    Planner lost(inv, {}, kLeaders);
    CHECK_FALSE(lost.plan(7));
    Status st = verdict_nothing_complete(lost, facts);
    CHECK(st.code() == TIERCKPT_ERR_NOT_FOUND);
    CHECK_THAT(st.message(), Catch::Contains("version 7 was committed") && Catch::Contains("rank(s) 2,3") &&
                                 Catch::Contains("--ckpt-persist"));
    facts.persist_dir = "/persist/job";
    CHECK_THAT(verdict_nothing_complete(lost, facts).message(),
               Catch::Contains("the persistent tier /persist/job holds no complete copy"));
    // Shards nobody committed (a save that never finished): start fresh.
    std::vector<InventoryEntry> uncommitted{shard(3, 0, 0, false)};
    CHECK(verdict_nothing_complete(Planner(uncommitted, {}, kLeaders), facts).is_ok());
    // A relaunch whose committed version is gone with its nodes.
    RestoreFacts relaunch = facts;
    relaunch.expect_version = 12;
    Status gone = verdict_nothing_complete(Planner({}, {}, kLeaders), relaunch);
    CHECK(gone.code() == TIERCKPT_ERR_NOT_FOUND);
    CHECK_THAT(gone.message(), Catch::Contains("committed version 12"));
    // Checkpoints of another world size: restart with that size.
    RestoreFacts other = facts;
    other.store_other_world = 6;
    Status six = verdict_nothing_complete(Planner({}, {}, kLeaders), other);
    CHECK(six.code() == TIERCKPT_ERR_INVALID);
    CHECK_THAT(six.message(), Catch::Contains("restart it with 6 ranks"));
    other = facts;
    other.persist_other_world = 8;
    other.persist_other_version = 40;
    Status eight = verdict_nothing_complete(Planner({}, {}, kLeaders), other);
    CHECK(eight.code() == TIERCKPT_ERR_INVALID);
    CHECK_THAT(eight.message(), Catch::Contains("job of 8 ranks (newest: version 40)"));
    // An elastic restore that could not complete a committed version of 6
    // ranks (newer than any of this size): never a fresh start, nor "restart
    // it with 6 ranks".
    RestoreFacts elastic = facts;
    elastic.store_other_world = 6;
    elastic.other_committed = 12;
    elastic.other_committed_world = 6;
    Status twelve = verdict_nothing_complete(Planner({}, {}, kLeaders), elastic);
    CHECK(twelve.code() == TIERCKPT_ERR_NOT_FOUND);
    CHECK_THAT(twelve.message(), Catch::Contains("version 12 (saved by 6 ranks) was committed"));
    // A newer committed version of this size speaks for itself.
    elastic.other_committed = 5;
    CHECK_THAT(verdict_nothing_complete(lost, elastic).message(), Catch::Contains("version 7 was committed"));
}
