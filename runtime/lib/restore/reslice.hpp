// Elastic restore's planner: which bytes of which saved shards make up this
// rank's regions when the checkpoint was saved by another number of ranks
// (or with another cut). Pure: no MPI, no store; every rank runs it on the
// checkpoint's manifests and its own registered regions. Unit-tested in
// tests/unit/test_reslice.cpp.
//
// Only regions with a layout can move between ranks: a slice of a global
// array takes its bytes from the saved slices it overlaps, a replicated
// region from one saved rank's copy. An opaque region is refused, with the
// fix.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/status.hpp"
#include "store/store_format.hpp"

namespace tck {

// bytes bytes of saved rank old_rank's region old_region (its index in that
// shard's manifest), from offset from in that region, go to this rank's
// region new_region (its index in registration order) at offset to.
struct SliceCopy {
    std::uint32_t old_rank = 0;
    std::uint32_t old_region = 0;
    std::uint64_t from = 0;
    std::uint32_t new_region = 0;
    std::uint64_t to = 0;
    std::uint64_t bytes = 0;
    bool operator==(const SliceCopy &o) const {
        return old_rank == o.old_rank && old_region == o.old_region && from == o.from && new_region == o.new_region &&
               to == o.to && bytes == o.bytes;
    }
};

struct ReslicePlan {
    std::vector<SliceCopy> copies;      // by new region, then by offset in it
    std::vector<std::uint32_t> shards;  // the saved ranks whose shards this rank reads, ascending
};

// saved[r]: saved rank r's manifest (every region, in order); mine: this
// rank's registered regions, in order; my_rank: this rank in the new job.
// A replicated region is read from the lowest saved rank whose shard this
// rank reads for its slices (whole shards move and are verified, so this
// costs no extra shard), or from saved rank my_rank % saved.size() when the
// rank holds no slice (to spread those reads). replicated_from, when set,
// is the saved rank they all come from instead: the restore that follows
// an elastic fetch (tierckpt_fetch_any) takes them from the fetched shard,
// saved rank my_rank % saved.size(), whose small objects the program read.
// TIERCKPT_ERR_INVALID when a registered region cannot be filled (opaque,
// not in the checkpoint, another kind or global size);
// TIERCKPT_ERR_CORRUPT when the saved layout itself is broken (slices that
// overlap or leave a gap: check_job_layout's rules).
Result<ReslicePlan> plan_reslice(const std::vector<std::vector<store::RegionEntry>> &saved,
                                 const std::vector<store::RegionEntry> &mine, std::uint32_t my_rank,
                                 std::optional<std::uint32_t> replicated_from = std::nullopt);

// The byte ranges [begin, end) of a saved shard's payload (whose manifest
// is `manifest`) that `copies` (this rank's copies from that shard) read,
// the manifest itself first: what a read of part of the shard checks
// against its piece table (store::check_pieces). A copy naming a region the
// manifest lacks adds nothing (RegionSet::copy_slices refuses it).
std::vector<std::pair<std::uint64_t, std::uint64_t>> payload_ranges(const std::vector<store::RegionEntry> &manifest,
                                                                    const std::vector<SliceCopy> &copies);

// Every region the checkpoint holds must be registered by some rank of the
// restoring job (registered_in_job: the names any of its ranks registered;
// a global array may be held by some ranks only): a restore that left saved
// state behind (an optimizer's, a region of the saved ranks' own) would look
// like a whole one. The same-size restore refuses another count of regions
// for the same reason. TIERCKPT_ERR_INVALID naming the first region left.
Status check_nothing_left_behind(const std::vector<std::vector<store::RegionEntry>> &saved,
                                 const std::set<std::string> &registered_in_job);

}  // namespace tck
