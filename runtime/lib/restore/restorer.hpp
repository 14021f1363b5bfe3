// Restore, the whole collective: the inventory, then for each candidate
// version (newest first) a plan, a transfer, the caller's use of the
// verified shard, and the job's agreement; a copy found bad is left out and
// the version planned again, an incomplete version gives way to an older
// one. When nothing works, the planner's verdict.
//
// Thread: the application's; collective over the job's communicator.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/run_report.hpp"
#include "common/status.hpp"
#include "lib/restore/reslice.hpp"
#include "lib/restore/shard.hpp"
#include "lib/restore/transfer.hpp"

namespace tck {

struct RestoreRequest {
    // The registered regions' count and payload size: refused early when a
    // shard cannot match. nullopt in a fetch, which takes the checkpoint's
    // layout as it is.
    std::optional<std::size_t> region_count;
    std::optional<std::uint64_t> payload_bytes;
    std::uint64_t expect_version = 0;  // TIERCKPT_EXPECT_VERSION (0: none)
    // Runs on each rank with its verified shard before the job agrees on
    // the attempt: restore matches and copies it into the regions
    // (TIERCKPT_ERR_INVALID: they do not match), fetch holds it.
    std::function<Status(Shard &)> use;
    // Elastic restore of a version saved by another number of ranks
    // (lib/restore/elastic.hpp). layout: the registered regions as a
    // manifest lists them; empty (a fetch), or with no sliced or replicated
    // region, and such versions are not tried. place: copies the planned
    // bytes of a verified saved shard into the regions.
    std::vector<store::RegionEntry> layout;
    std::function<Status(const Shard &, const std::vector<SliceCopy> &)> place;
    // A fetch of any world size (tierckpt_fetch_any): versions saved by
    // another number of ranks are candidates too, and for one of them each
    // rank's use() gets saved rank (rank % saved world)'s shard, the one its
    // replicated regions would come from. Set alike on every rank.
    bool any_world = false;
    // Only this version of this world size is tried (the restore that
    // follows an elastic fetch: the caller prepared its state for it); when
    // it cannot be restored the outcome is found = false with no verdict on
    // the other versions, and the caller names the problem.
    std::optional<std::pair<std::uint64_t, std::uint32_t>> only;
};

struct RestoreOutcome {
    RestoreResult result;          // found = false: nothing to restore, start fresh
    std::uint64_t bytes = 0;       // this rank's shard (the run report)
    const char *via = "none";      // how it came (the run report)
    report::RestoreBreakdown parts;  // where this rank's time went (the run report)
};

Result<RestoreOutcome> restore_newest(TransferContext &ctx, const RestoreRequest &req);

}  // namespace tck
