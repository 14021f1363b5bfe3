#include "reslice.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <string>

#include "lib/save/layout.hpp"

namespace tck {

namespace {

struct SavedSlice {
    std::uint64_t begin;  // in the global array
    std::uint64_t bytes;
    std::uint32_t rank;
    std::uint32_t region;
};

struct SavedArray {
    store::RegionKind kind;
    std::uint64_t global = 0;           // slice: the array's size; replicated: the region's
    std::vector<SavedSlice> slices;     // slice: by begin; replicated: one per saved rank, by rank
};

}  // namespace

Result<ReslicePlan> plan_reslice(const std::vector<std::vector<store::RegionEntry>> &saved,
                                 const std::vector<store::RegionEntry> &mine, std::uint32_t my_rank,
                                 std::optional<std::uint32_t> replicated_from) {
    // The saved layout came from manifests anyone could have written: held
    // to the rules a save checks before any byte is planned from it.
    std::vector<std::vector<store::RegionEntry>> layouts(saved.size());
    std::map<std::string, SavedArray> arrays;
    for (std::uint32_t r = 0; r < saved.size(); ++r) {
        for (std::uint32_t i = 0; i < saved[r].size(); ++i) {
            const store::RegionEntry &e = saved[r][i];
            if (e.layout.kind == store::RegionKind::opaque) continue;
            layouts[r].push_back(e);
            SavedArray &a = arrays[e.name];
            a.kind = e.layout.kind;
            a.global = e.layout.global_bytes;
            if (e.bytes || e.layout.kind == store::RegionKind::replicated) {
                a.slices.push_back({e.layout.global_offset, e.bytes, r, i});
            }
        }
    }
    if (Status st = check_job_layout(layouts); !st) {
        return error(TIERCKPT_ERR_CORRUPT, "the checkpoint's layout: {}", st.message());
    }
    for (auto &[name, a] : arrays) {
        std::sort(a.slices.begin(), a.slices.end(), [](const SavedSlice &x, const SavedSlice &y) {
            return x.begin != y.begin ? x.begin < y.begin : x.rank < y.rank;
        });
    }

    ReslicePlan plan;
    std::set<std::uint32_t> shards;
    std::vector<std::pair<std::uint32_t, const SavedArray *>> replicated;  // placed once the slices are
    for (std::uint32_t n = 0; n < mine.size(); ++n) {
        const store::RegionEntry &m = mine[n];
        if (m.layout.kind == store::RegionKind::opaque) {
            return error(TIERCKPT_ERR_INVALID,
                         "region '{}' is opaque: it restores only onto the rank that saved it, in a job of as many "
                         "ranks; register it with tierckpt_register_slice or tierckpt_register_replicated",
                         m.name);
        }
        auto it = arrays.find(m.name);
        if (it == arrays.end()) {
            return error(TIERCKPT_ERR_INVALID, "the checkpoint has no sliced or replicated region '{}'", m.name);
        }
        const SavedArray &a = it->second;
        if (a.kind != m.layout.kind) {
            return error(TIERCKPT_ERR_INVALID, "region '{}' was saved as {}; it is registered as {}", m.name,
                         store::region_kind_name(a.kind), store::region_kind_name(m.layout.kind));
        }
        if (a.kind == store::RegionKind::replicated) {
            if (a.global != m.bytes) {
                return error(TIERCKPT_ERR_INVALID, "replicated region '{}' was saved with {} bytes; {} are registered",
                             m.name, a.global, m.bytes);
            }
            if (m.bytes) replicated.push_back({n, &a});
            continue;
        }
        if (a.global != m.layout.global_bytes) {
            return error(TIERCKPT_ERR_INVALID,
                         "the global array '{}' was saved with {} bytes; it is registered with {}", m.name, a.global,
                         m.layout.global_bytes);
        }
        // The saved slices tile the array (checked above): walk those that
        // overlap [begin, end).
        const std::uint64_t begin = m.layout.global_offset, end = begin + m.bytes;
        auto s = std::upper_bound(a.slices.begin(), a.slices.end(), begin,
                                  [](std::uint64_t v, const SavedSlice &x) { return v < x.begin; });
        if (s != a.slices.begin()) --s;
        for (std::uint64_t at = begin; at < end; ++s) {
            if (s == a.slices.end()) {  // cannot be once the layout passed; never read past it
                return error(TIERCKPT_ERR_CORRUPT, "bytes [{}, {}) of the global array '{}' are in no saved slice", at,
                             end, m.name);
            }
            const std::uint64_t s_end = s->begin + s->bytes;
            const std::uint64_t upto = std::min(end, s_end);
            if (at < s_end) {
                plan.copies.push_back({s->rank, s->region, at - s->begin, n, at - begin, upto - at});
                shards.insert(s->rank);
                at = upto;
            }
        }
    }
    // A replicated region is the same in every saved shard: it comes from a
    // shard this rank reads anyway for its slices (a whole shard is moved
    // and verified to read any of it); a rank with no slice reads saved rank
    // my_rank % saved ranks, to spread those reads (and so does the restore
    // after a fetch: the program read that shard's small objects).
    for (const auto &[n, a] : replicated) {
        // check_job_layout saw it on every saved rank: one per rank, by rank.
        const std::size_t from = replicated_from ? *replicated_from % a->slices.size()
                                 : shards.empty() ? my_rank % a->slices.size()
                                                  : *shards.begin();
        const SavedSlice &s = a->slices[from];
        plan.copies.push_back({s.rank, s.region, 0, n, 0, mine[n].bytes});
        shards.insert(s.rank);
    }
    std::stable_sort(plan.copies.begin(), plan.copies.end(), [](const SliceCopy &x, const SliceCopy &y) {
        return x.new_region != y.new_region ? x.new_region < y.new_region : x.to < y.to;
    });
    plan.shards.assign(shards.begin(), shards.end());
    return plan;
}

std::vector<std::pair<std::uint64_t, std::uint64_t>> payload_ranges(const std::vector<store::RegionEntry> &manifest,
                                                                    const std::vector<SliceCopy> &copies) {
    std::vector<std::uint64_t> at(manifest.size());
    std::uint64_t off = store::manifest_bytes_for(manifest);
    std::vector<std::pair<std::uint64_t, std::uint64_t>> out{{0, off}};
    for (std::size_t i = 0; i < manifest.size(); ++i) {
        at[i] = off;
        off += manifest[i].bytes;
    }
    for (const SliceCopy &c : copies) {
        if (c.old_region < manifest.size()) out.emplace_back(at[c.old_region] + c.from, at[c.old_region] + c.from + c.bytes);
    }
    return out;
}

Status check_nothing_left_behind(const std::vector<std::vector<store::RegionEntry>> &saved,
                                 const std::set<std::string> &registered_in_job) {
    for (std::uint32_t r = 0; r < saved.size(); ++r) {
        for (const auto &e : saved[r]) {
            if (registered_in_job.count(e.name)) continue;
            if (e.layout.kind == store::RegionKind::opaque) {
                return error(TIERCKPT_ERR_INVALID,
                             "the checkpoint holds region '{}' of saved rank {}, which is opaque: it restores only "
                             "in a job of {} ranks",
                             e.name, r, saved.size());
            }
            return error(TIERCKPT_ERR_INVALID,
                         "the checkpoint holds the {} region '{}', which no rank of this job registers: register "
                         "every region the checkpoint was saved with",
                         store::region_kind_name(e.layout.kind), e.name);
        }
    }
    return Status::ok();
}

}  // namespace tck
