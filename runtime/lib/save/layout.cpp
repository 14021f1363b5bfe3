#include "layout.hpp"

#include <algorithm>
#include <climits>
#include <cstdio>
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
    // Ranks in order, each once (a manifest someone wrote may repeat one):
    // the first rank missing, if any.
    std::size_t next = 0;
    for (const auto &[rank, e] : on) {
        if (static_cast<std::size_t>(rank) == next) ++next;
        else if (static_cast<std::size_t>(rank) > next) break;
    }
    if (next != world) {
        std::size_t have = 0;
        for (std::size_t i = 0; i < on.size(); ++i) have += i == 0 || on[i].first != on[i - 1].first;
        return error(TIERCKPT_ERR_INVALID,
                     "replicated region '{}' is registered on {} of {} ranks (not on rank {}); register it on every "
                     "rank, or as a slice",
                     name, have, world, next);
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
        for (const auto &e : by_rank[r]) {
            if (std::string why = store::layout_problem(e.layout, e.bytes); !why.empty()) {
                return error(TIERCKPT_ERR_INVALID, "rank {}: region '{}': {}", r, e.name, why);
            }
            arrays[e.name].emplace_back(static_cast<int>(r), e);
        }
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
        if (kind == store::RegionKind::opaque) continue;
        Status st = kind == store::RegionKind::replicated ? check_replicated(name, on, by_rank.size())
                                                          : check_slices(name, on);
        if (!st) return st;
    }
    return Status::ok();
}

Status agree_layout(MPI_Comm comm, const std::vector<store::RegionEntry> &mine) {
    int world = 0, rank = 0;
    MPI_Comm_size(comm, &world);
    MPI_Comm_rank(comm, &rank);
    const auto nw = static_cast<std::size_t>(world);
    // Each name to its owner: FNV-1a of the name, the same on every rank.
    std::vector<std::vector<store::LayoutEntry>> to(nw);
    for (const auto &e : mine) {
        std::uint64_t h = 0xcbf29ce484222325ull;
        for (unsigned char c : e.name) h = (h ^ c) * 0x100000001b3ull;
        to[h % nw].push_back(store::to_layout_entry(e));
    }
    constexpr std::size_t kEntry = sizeof(store::LayoutEntry);
    std::vector<int> send_n(nw), recv_n(nw), send_at(nw), recv_at(nw);
    std::uint64_t sent = 0;
    for (std::size_t r = 0; r < nw; ++r) {
        send_at[r] = static_cast<int>(sent);  // below 2 GiB: a rank's regions are bounded far below that
        send_n[r] = static_cast<int>(to[r].size() * kEntry);
        sent += to[r].size() * kEntry;
    }
    int rc = MPI_Alltoall(send_n.data(), 1, MPI_INT, recv_n.data(), 1, MPI_INT, comm);
    if (rc != MPI_SUCCESS) return mpi_error("the regions' layouts (MPI_Alltoall)", rc);
    std::uint64_t received = 0;
    for (std::size_t r = 0; r < nw; ++r) received += static_cast<std::uint64_t>(recv_n[r]);
    // MPI counts are ints: every rank gives up alike when one owner would
    // receive more than they can count.
    const int too_much = received > static_cast<std::uint64_t>(INT_MAX) ? 1 : 0;
    int any_too_much = 0;
    rc = MPI_Allreduce(&too_much, &any_too_much, 1, MPI_INT, MPI_MAX, comm);
    if (rc != MPI_SUCCESS) return mpi_error("the regions' layouts (MPI_Allreduce)", rc);
    if (any_too_much) {
        return error(TIERCKPT_ERR_INVALID, "the regions' layouts are too many to check (2 GiB or more for one rank)");
    }
    received = 0;
    for (std::size_t r = 0; r < nw; ++r) {
        recv_at[r] = static_cast<int>(received);
        received += static_cast<std::uint64_t>(recv_n[r]);
    }
    std::vector<std::uint8_t> out(sent), in(received);
    for (std::size_t r = 0; r < nw; ++r) {
        if (!to[r].empty()) std::memcpy(out.data() + send_at[r], to[r].data(), to[r].size() * kEntry);
    }
    rc = MPI_Alltoallv(out.data(), send_n.data(), send_at.data(), MPI_BYTE, in.data(), recv_n.data(), recv_at.data(),
                       MPI_BYTE, comm);
    if (rc != MPI_SUCCESS) return mpi_error("the regions' layouts (MPI_Alltoallv)", rc);
    std::vector<std::vector<store::RegionEntry>> by_rank(nw);
    for (std::size_t r = 0; r < nw; ++r) {
        for (std::size_t off = 0; off + kEntry <= static_cast<std::size_t>(recv_n[r]); off += kEntry) {
            store::LayoutEntry w;
            std::memcpy(&w, in.data() + recv_at[r] + off, sizeof w);
            by_rank[r].push_back(store::from_layout_entry(w));
        }
    }
    // This rank's arrays; then the lowest rank that found a problem says it.
    return first_failure(comm, check_job_layout(by_rank), "the regions' layouts (the verdict)");
}

}  // namespace tck
