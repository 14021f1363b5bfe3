// The registered regions, and how their bytes move between the
// application's memory and a slot of the node store: the shard's manifest,
// the copy in (what save() stalls for) and the copy out (restore). Host
// regions by memcpy; device regions through cuda::Stager (cuda_stage.hpp),
// which this class creates with the first device region.
//
// Thread: the application's only (inside save, restore and add_region).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/status.hpp"
#include "lib/cuda_stage.hpp"
#include "lib/restore/reslice.hpp"
#include "store/store_format.hpp"

namespace tck {

class RegionSet {
public:
    // store_base/store_bytes: the node store's mapping, registered with CUDA
    // when the first device region comes. cuda: look for device regions at
    // all (Options::cuda). rank: for log lines.
    RegionSet(std::uint8_t *store_base, std::uint64_t store_bytes, bool cuda, int rank);

    // Names are unique (a hash lookup: n regions cost O(n)), 1 to
    // store::kRegionNameBytes - 1 bytes; ptr may be null only with 0 bytes.
    // layout: a slice of the global array of this name, or replicated
    // (store::layout_problem says which are possible). TIERCKPT_ERR_INVALID
    // with the reason.
    Status add(const std::string &name, void *ptr, std::size_t bytes, const store::RegionLayout &layout = {});
    void clear();
    bool empty() const { return regions_.empty(); }
    std::size_t count() const { return regions_.size(); }
    // Every region as a manifest lists it (for the job-wide check at
    // save, lib/save/layout.hpp).
    std::vector<store::RegionEntry> entries() const;
    // Counts the changes to the regions that have a layout (opaque regions
    // have no rule across ranks): the job-wide check runs again after one.
    std::uint64_t generation() const { return generation_; }
    // A shard of these regions: its manifest and the regions back to back.
    std::uint64_t payload_bytes() const;

    // Writes the shard's manifest at dst; returns its size in bytes (where
    // the regions' bytes start).
    std::uint64_t write_manifest(std::uint8_t *dst) const;
    // Copies the regions back to back to dst (the slot's data, after the
    // manifest). Device regions: the application's queued work first, then
    // copies that all end before this returns. staged(n): the first n bytes
    // at dst have landed (the worker checksums them meanwhile). crash: the
    // test hook TIERCKPT_TEST_CRASH_IN_SAVE, half of the first region, then
    // the process exits.
    Status stage(std::uint8_t *dst, bool crash, const std::function<void(std::uint64_t)> &staged);

    // Whether these are the regions a shard's manifest lists (names, sizes
    // and layouts, in order). TIERCKPT_ERR_INVALID naming the first
    // difference.
    Status match(const std::vector<store::RegionEntry> &entries) const;
    // Copies a matching shard's payload (manifest first) into the regions.
    Status copy_into(const std::uint8_t *payload);
    // An elastic restore's copies out of one verified saved shard: payload
    // (manifest first) lists shard_regions; each copy's old_region indexes
    // them, its new_region these regions (registration order), and its
    // offsets and size are bytes (plan_reslice, lib/restore/reslice.hpp).
    // TIERCKPT_ERR_INTERNAL for a copy that does not lie within both.
    Status copy_slices(const std::uint8_t *payload, const std::vector<store::RegionEntry> &shard_regions,
                       const std::vector<SliceCopy> &copies);

    // How regions reach the store: host (no device region), cuda-direct or
    // cuda-bounce (see cuda_stage.hpp).
    cuda::Path stage_path() const;
    // Unregisters the store from CUDA; before the store's mapping goes.
    void release() { stager_.reset(); }

private:
    struct Region {
        std::string name;
        void *ptr;
        std::size_t bytes;
        cuda::PtrInfo mem;  // device memory, and on which device
        store::RegionLayout layout;
    };
    bool has_layout() const { return with_layout_ > 0; }
    std::size_t with_layout_ = 0;  // regions that have one
    std::uint64_t generation_ = 0;
    std::uint8_t *store_base_;
    std::uint64_t store_bytes_;
    bool cuda_enabled_;
    int rank_;
    bool stage_pieces_ = false;  // TIERCKPT_TEST_STAGE_PIECES: host regions in pieces too
    std::unique_ptr<cuda::Stager> stager_;  // with the first device region
    std::vector<Region> regions_;
    std::unordered_set<std::string> names_;  // of regions_
};

}  // namespace tck
