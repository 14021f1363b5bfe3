#include "layout.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <string>

#include "lib/collectives.hpp"

namespace tck {

namespace {

struct Piece {
    int rank;
    std::uint64_t begin, end;  // bytes [begin, end) of the global array
};

Status check_replicated(const std::string &name, const std::vector<std::pair<int, store::RegionEntry>> &on,
                        std::size_t world) {
    for (const auto &[rank, e] : on) {
        if (e.bytes != on.front().second.bytes) {
            return error(TIERCKPT_ERR_INVALID, "replicated region '{}' has {} bytes on rank {} and {} on rank {}", name,
                         on.front().second.bytes, on.front().first, e.bytes, rank);
        }
    }
    if (on.size() != world) {
        int missing = static_cast<int>(on.size());  // the first rank without it
        for (std::size_t i = 0; i < on.size(); ++i) {
            if (on[i].first != static_cast<int>(i)) {
                missing = static_cast<int>(i);
                break;
            }
        }
        return error(TIERCKPT_ERR_INVALID,
                     "replicated region '{}' is registered on {} of {} ranks (not on rank {}); register it on every "
                     "rank, or as a slice",
                     name, on.size(), world, missing);
    }
    return Status::ok();
}

Status check_slices(const std::string &name, const std::vector<std::pair<int, store::RegionEntry>> &on) {
    const std::uint64_t global = on.front().second.layout.global_bytes;
    std::vector<Piece> pieces;
    for (const auto &[rank, e] : on) {
        if (e.layout.global_bytes != global) {
            return error(TIERCKPT_ERR_INVALID,
                         "the global array '{}' has {} bytes on rank {} and {} on rank {}; every slice must give the "
                         "same global size",
                         name, global, on.front().first, e.layout.global_bytes, rank);
        }
        if (e.bytes) pieces.push_back({rank, e.layout.global_offset, e.layout.global_offset + e.bytes});
    }
    std::sort(pieces.begin(), pieces.end(),
              [](const Piece &a, const Piece &b) { return a.begin != b.begin ? a.begin < b.begin : a.rank < b.rank; });
    std::uint64_t covered = 0;  // bytes [0, covered) lie in a slice
    int last_rank = -1;
    for (const Piece &p : pieces) {
        if (p.begin > covered) {
            return error(TIERCKPT_ERR_INVALID, "bytes [{}, {}) of the global array '{}' ({} bytes) are in no rank's slice",
                         covered, p.begin, name, global);
        }
        if (p.begin < covered) {
            return error(TIERCKPT_ERR_INVALID,
                         "ranks {} and {} both hold bytes [{}, {}) of the global array '{}'; slices must not overlap",
                         last_rank, p.rank, p.begin, std::min(covered, p.end), name);
        }
        covered = p.end;
        last_rank = p.rank;
    }
    if (covered != global) {
        return error(TIERCKPT_ERR_INVALID, "bytes [{}, {}) of the global array '{}' ({} bytes) are in no rank's slice",
                     covered, global, name, global);
    }
    return Status::ok();
}

}  // namespace

Status check_job_layout(const std::vector<std::vector<store::RegionEntry>> &by_rank) {
    // By name (in order, so that every rank names the same first problem),
    // the ranks that register it, in rank order.
    std::map<std::string, std::vector<std::pair<int, store::RegionEntry>>> arrays;
    for (std::size_t r = 0; r < by_rank.size(); ++r) {
        for (const auto &e : by_rank[r]) arrays[e.name].emplace_back(static_cast<int>(r), e);
    }
    for (const auto &[name, on] : arrays) {
        const store::RegionKind kind = on.front().second.layout.kind;
        for (const auto &[rank, e] : on) {
            if (e.layout.kind != kind) {
                return error(TIERCKPT_ERR_INVALID, "region '{}' is {} on rank {} and {} on rank {}", name,
                             store::region_kind_name(kind), on.front().first, store::region_kind_name(e.layout.kind),
                             rank);
            }
        }
        Status st = kind == store::RegionKind::replicated ? check_replicated(name, on, by_rank.size())
                                                          : check_slices(name, on);
        if (!st) return st;
    }
    return Status::ok();
}

Status agree_layout(MPI_Comm comm, const std::vector<store::RegionEntry> &mine) {
    std::vector<store::LayoutEntry> wire(mine.size());
    for (std::size_t i = 0; i < mine.size(); ++i) {
        store::LayoutEntry &w = wire[i];
        std::memset(&w, 0, sizeof w);
        std::memcpy(w.name, mine[i].name.data(), std::min(mine[i].name.size(), sizeof w.name - 1));
        w.bytes = mine[i].bytes;
        w.kind = static_cast<std::uint32_t>(mine[i].layout.kind);
        w.global_offset = mine[i].layout.global_offset;
        w.global_bytes = mine[i].layout.global_bytes;
    }
    auto all = allgather_bytes(comm, wire.data(), wire.size() * sizeof(store::LayoutEntry), "the regions' layouts");
    if (!all) return all.status();
    std::vector<std::vector<store::RegionEntry>> by_rank(all->size());
    for (std::size_t r = 0; r < all->size(); ++r) {
        const std::vector<std::uint8_t> &bytes = (*all)[r];
        for (std::size_t off = 0; off + sizeof(store::LayoutEntry) <= bytes.size(); off += sizeof(store::LayoutEntry)) {
            store::LayoutEntry w;
            std::memcpy(&w, bytes.data() + off, sizeof w);
            by_rank[r].push_back({std::string(w.name, ::strnlen(w.name, sizeof w.name)), w.bytes,
                                  {static_cast<store::RegionKind>(w.kind), w.global_offset, w.global_bytes}});
        }
    }
    return check_job_layout(by_rank);
}

}  // namespace tck
