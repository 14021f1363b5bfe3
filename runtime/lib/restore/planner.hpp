// The restore planner: which version to restore and which copy of its shard
// each rank reads, and what to report when no version is complete. Pure: no
// MPI, no store, no clock; every rank runs it on the same inventory and so
// decides alike. Unit-tested in tests/unit/test_restore_planner.cpp.
//
// A version is complete when every rank's shard has a copy not found bad in
// some node store, or when the persistent tier holds the version complete
// (it then serves the ranks memory lacks). A rank prefers the copy in its
// own node's store, then the first listed elsewhere.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/status.hpp"
#include "lib/restore/inventory.hpp"

namespace tck {

struct Plan {
    static constexpr int kFromPersistent = -1;
    static constexpr int kNothing = -2;  // a round of an elastic restore in which the rank reads no shard
    std::uint64_t version = 0;
    // For every rank: the index of the inventory entry it reads, or
    // kFromPersistent.
    std::vector<int> entry;
    bool uses_persistent() const;
};

class Planner {
public:
    // leader_of: every rank's node leader (its size is the world size).
    Planner(std::vector<InventoryEntry> entries, std::set<std::uint64_t> persistent, std::vector<int> leader_of);

    // The versions to try, newest first: every one listed somewhere.
    const std::vector<std::uint64_t> &candidates() const { return candidates_; }
    // The plan for version, or nullopt when it is not complete.
    std::optional<Plan> plan(std::uint64_t version) const;
    // A copy was found damaged or unreachable: plans leave it out.
    void exclude_copy(int entry);
    // A shard of version in the persistent tier is damaged or its MANIFEST
    // unreadable: plans no longer count on the tier for it.
    void exclude_persistent(std::uint64_t version);
    bool persistent_empty() const { return persistent_.empty(); }

    // The newest version some owner marked committed.
    std::optional<std::uint64_t> newest_committed() const;
    // The ranks with no usable copy of version in any node store, "2,3".
    std::string lost_ranks(std::uint64_t version) const;
    const std::vector<InventoryEntry> &entries() const { return entries_; }

private:
    int world() const { return static_cast<int>(leader_of_.size()); }
    std::vector<InventoryEntry> entries_;
    std::vector<char> bad_;  // by entry
    std::set<std::uint64_t> persistent_;
    std::vector<int> leader_of_;
    std::vector<std::uint64_t> candidates_;
};

// What restore found besides the plans, for its verdict when none worked.
struct RestoreFacts {
    int world = 0;
    std::string persist_dir;                  // "": no persistent tier
    std::uint64_t store_other_world = 0;      // Inventory::store_other_world
    std::uint64_t persist_other_version = 0;  // Inventory::persist_other_*
    std::uint64_t persist_other_world = 0;
    std::uint64_t expect_version = 0;         // TIERCKPT_EXPECT_VERSION: committed before a relaunch (0: none)
    // The newest version of another world size marked committed in the node
    // stores, and that size, when restore tried those (0: none).
    std::uint64_t other_committed = 0;
    std::uint64_t other_committed_world = 0;
};

// The verdict when no version could be restored. An error when starting from
// scratch would throw the run's progress away (a committed version lost, a
// relaunch whose checkpoint is gone) or when the checkpoints are of another
// world size; Status::ok() when the job has no checkpoint and starts fresh.
Status verdict_nothing_complete(const Planner &planner, const RestoreFacts &facts);

}  // namespace tck
