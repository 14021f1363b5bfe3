#include "regions.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "common/log.hpp"

namespace tck {

namespace {

std::string describe_layout(const store::RegionLayout &l, std::uint64_t bytes) {
    switch (l.kind) {
    case store::RegionKind::slice:
        return fmt::format("bytes [{}, {}) of a global array of {}", l.global_offset, l.global_offset + bytes,
                           l.global_bytes);
    case store::RegionKind::replicated: return "replicated";
    case store::RegionKind::opaque: break;
    }
    return "opaque";
}

}  // namespace

RegionSet::RegionSet(std::uint8_t *store_base, std::uint64_t store_bytes, bool cuda, int rank)
    : store_base_(store_base), store_bytes_(store_bytes), cuda_enabled_(cuda), rank_(rank) {
    if (const char *p = std::getenv("TIERCKPT_TEST_STAGE_PIECES")) stage_pieces_ = std::strcmp(p, "1") == 0;
}

Status RegionSet::add(const std::string &name, void *ptr, std::size_t bytes, const store::RegionLayout &layout) {
    if (name.empty() || name.size() >= store::kRegionNameBytes) {
        return error(TIERCKPT_ERR_INVALID, "region name '{}': give 1 to {} characters", name,
                     store::kRegionNameBytes - 1);
    }
    if (!ptr && bytes) return error(TIERCKPT_ERR_INVALID, "region '{}': null pointer", name);
    if (names_.count(name)) return error(TIERCKPT_ERR_INVALID, "region '{}' is registered already", name);
    if (std::string why = store::layout_problem(layout, bytes); !why.empty()) {
        return error(TIERCKPT_ERR_INVALID, "region '{}': {}", name, why);
    }
    cuda::PtrInfo mem;
    if (cuda_enabled_ && bytes) mem = cuda::classify(ptr);
    if (mem.device && !stager_) {
        // The first device region: register the store with CUDA (once; the
        // pages get pinned), or fall back to bounce buffers and say why.
        stager_ = std::make_unique<cuda::Stager>();
        const char *force = std::getenv("TIERCKPT_TEST_CUDA_BOUNCE");
        stager_->register_store(store_base_, store_bytes_, force && std::strcmp(force, "1") == 0);
        if (stager_->store_registered()) {
            log::info("rank {}: device regions are staged straight into the node store (cuda-direct)", rank_);
        } else {
            log::warn("rank {}: {}; device regions are staged through pinned bounce buffers (cuda-bounce), at "
                      "memory-copy speed instead of PCIe speed. Check the locked-memory limit (ulimit -l) and that "
                      "the store is on tmpfs or hugetlbfs",
                      rank_, stager_->fallback_reason());
        }
    }
    regions_.push_back({name, ptr, bytes, mem, layout});
    names_.insert(name);
    if (layout.kind != store::RegionKind::opaque) {
        ++with_layout_;
        ++generation_;
    }
    return Status::ok();
}

void RegionSet::clear() {
    regions_.clear();
    names_.clear();
    if (with_layout_) ++generation_;
    with_layout_ = 0;
}

std::vector<store::RegionEntry> RegionSet::entries() const {
    std::vector<store::RegionEntry> out;
    out.reserve(regions_.size());
    for (const auto &r : regions_) out.push_back({r.name, r.bytes, r.layout});
    return out;
}

cuda::Path RegionSet::stage_path() const {
    return cuda::choose_path(stager_ != nullptr, stager_ && stager_->store_registered());
}

std::uint64_t RegionSet::payload_bytes() const {
    std::uint64_t n = store::manifest_bytes(regions_.size(), has_layout());
    for (const auto &r : regions_) n += r.bytes;
    return n;
}

std::uint64_t RegionSet::write_manifest(std::uint8_t *dst) const {
    store::ManifestHead head{};
    std::memcpy(head.magic, has_layout() ? store::kManifestMagicLayout : store::kManifestMagic, sizeof head.magic);
    head.nregions = static_cast<std::uint32_t>(regions_.size());
    std::memcpy(dst, &head, sizeof head);
    std::uint64_t off = sizeof head;
    for (const auto &r : regions_) {
        if (has_layout()) {
            const store::LayoutEntry e = store::to_layout_entry({r.name, r.bytes, r.layout});
            std::memcpy(dst + off, &e, sizeof e);
            off += sizeof e;
        } else {
            store::ManifestEntry e{};
            std::memcpy(e.name, r.name.data(), r.name.size());
            e.bytes = r.bytes;
            std::memcpy(dst + off, &e, sizeof e);
            off += sizeof e;
        }
    }
    return off;
}

Status RegionSet::stage(std::uint8_t *dst, bool crash, const std::function<void(std::uint64_t)> &staged) {
    if (stager_) {
        std::vector<int> quiet;
        for (const auto &r : regions_) {
            if (!r.mem.device || std::find(quiet.begin(), quiet.end(), r.mem.device_id) != quiet.end()) continue;
            quiet.push_back(r.mem.device_id);
            if (Status st = stager_->quiesce(r.mem.device_id); !st) return st;
        }
    }
    std::uint64_t off = 0;
    Status st;
    for (const auto &r : regions_) {
        std::size_t n = crash ? r.bytes / 2 : r.bytes;
        bool pending = stager_ && stager_->has_pending();  // queued device copies before this region
        if (r.mem.device) {
            st = stager_->to_host(dst + off, r.ptr, n, r.mem.device_id);
            if (!st) st = error(st.code(), "region '{}' (device {}): {}", r.name, r.mem.device_id, st.message());
        } else if (stage_pieces_) {
            for (const auto &p : cuda::plan_pieces(n, cuda::kPieceBytes)) {
                std::memcpy(dst + off + p.offset, static_cast<const std::uint8_t *>(r.ptr) + p.offset, p.bytes);
                if (!pending) staged(off + p.offset + p.bytes);
            }
        } else {
            std::memcpy(dst + off, r.ptr, n);
        }
        if (!st || crash) break;
        off += r.bytes;
        if (!(stager_ && stager_->has_pending())) staged(off);
    }
    if (stager_) {
        Status fin = stager_->finish([&](const void *end) {
            staged(static_cast<std::uint64_t>(static_cast<const std::uint8_t *>(end) - dst));
        });
        if (st && !fin) st = fin;
    }
    if (crash) ::_exit(86);
    return st;
}

Status RegionSet::match(const std::vector<store::RegionEntry> &entries) const {
    if (entries.size() != regions_.size()) {
        return error(TIERCKPT_ERR_INVALID, "the checkpoint has {} regions, {} are registered", entries.size(),
                     regions_.size());
    }
    for (std::size_t i = 0; i < regions_.size(); ++i) {
        const auto &e = entries[i];
        const auto &r = regions_[i];
        if (e.name != r.name || e.bytes != r.bytes) {
            return error(TIERCKPT_ERR_INVALID,
                         "the checkpoint's region '{}' ({} bytes) does not match the registered region '{}' ({} bytes)",
                         e.name, e.bytes, r.name, r.bytes);
        }
        if (e.layout != r.layout) {
            return error(TIERCKPT_ERR_INVALID, "the checkpoint's region '{}' is {}; the registered one is {}", e.name,
                         describe_layout(e.layout, e.bytes), describe_layout(r.layout, r.bytes));
        }
    }
    return Status::ok();
}

Status RegionSet::copy_into(const std::uint8_t *payload) {
    std::uint64_t off = store::manifest_bytes(regions_.size(), has_layout());
    Status st;
    for (const auto &r : regions_) {
        if (r.mem.device) {
            st = stager_->to_device(r.ptr, payload + off, r.bytes, r.mem.device_id);
            if (!st) {
                st = error(st.code(), "region '{}' (device {}): {}", r.name, r.mem.device_id, st.message());
                break;
            }
        } else {
            std::memcpy(r.ptr, payload + off, r.bytes);
        }
        off += r.bytes;
    }
    if (stager_) {
        Status fin = stager_->finish();
        if (st && !fin) st = fin;
    }
    return st;
}

Status RegionSet::copy_slices(const std::uint8_t *payload, const std::vector<store::RegionEntry> &shard_regions,
                              const std::vector<SliceCopy> &copies) {
    // Where each saved region's bytes start in the payload.
    std::vector<std::uint64_t> at(shard_regions.size());
    std::uint64_t off = store::manifest_bytes_for(shard_regions);
    for (std::size_t i = 0; i < shard_regions.size(); ++i) {
        at[i] = off;
        off += shard_regions[i].bytes;
    }
    Status st;
    for (const SliceCopy &c : copies) {
        if (c.old_region >= shard_regions.size() || c.new_region >= regions_.size() ||
            c.from > shard_regions[c.old_region].bytes || c.bytes > shard_regions[c.old_region].bytes - c.from ||
            c.to > regions_[c.new_region].bytes || c.bytes > regions_[c.new_region].bytes - c.to) {
            st = error(TIERCKPT_ERR_INTERNAL, "restore: a planned copy of {} bytes lies outside its regions", c.bytes);
            break;
        }
        const Region &r = regions_[c.new_region];
        const std::uint8_t *src = payload + at[c.old_region] + c.from;
        void *dst = static_cast<std::uint8_t *>(r.ptr) + c.to;
        if (r.mem.device) {
            st = stager_->to_device(dst, src, c.bytes, r.mem.device_id);
            if (!st) {
                st = error(st.code(), "region '{}' (device {}): {}", r.name, r.mem.device_id, st.message());
                break;
            }
        } else {
            std::memcpy(dst, src, c.bytes);
        }
    }
    if (stager_) {
        Status fin = stager_->finish();
        if (st && !fin) st = fin;
    }
    return st;
}

}  // namespace tck
