#include "inventory.hpp"

#include <cstring>

#include "common/log.hpp"
#include "lib/collectives.hpp"

namespace tck {

Result<Inventory> take_inventory(const JobLayout &job, store::StoreFile &store, const std::string &persist_dir) {
    Inventory out;
    std::vector<InventoryEntry> mine;
    std::uint64_t other_world = 0;
    if (job.node_rank == 0) {
        for (const auto &s : store.shards()) {
            if (s.rec.world != static_cast<std::uint32_t>(job.world)) other_world = s.rec.world;
            bool committed = s.rec.state == static_cast<std::uint32_t>(store::SlotState::committed);
            mine.push_back({s.rec.version, s.rec.payload_bytes, s.rec.rank, static_cast<std::uint32_t>(job.rank),
                            s.slot, s.rec.payload_crc, committed ? 1u : 0u, s.rec.nregions, s.rec.offset,
                            s.rec.world, 0});
        }
    }
    auto gathered = allgather_bytes(job.comm, mine.data(), mine.size() * sizeof(InventoryEntry), "restore (inventory)");
    if (!gathered) return gathered.status();
    for (const auto &part : *gathered) {
        for (std::size_t at = 0; at + sizeof(InventoryEntry) <= part.size(); at += sizeof(InventoryEntry)) {
            InventoryEntry e;
            std::memcpy(&e, part.data() + at, sizeof e);
            (e.world == static_cast<std::uint32_t>(job.world) ? out.entries : out.other).push_back(e);
        }
    }
    MPI_Allreduce(&other_world, &out.store_other_world, 1, MPI_UINT64_T, MPI_MAX, job.comm);

    if (persist_dir.empty()) return out;
    std::vector<std::uint64_t> pv;
    std::vector<std::uint64_t> others;  // version, world, version, world, ...
    std::uint64_t pother[2] = {0, 0};  // newest complete version of another world size, and that size
    if (job.rank == 0) {
        auto dir = persist::Dir::open(persist_dir, false);
        auto all = dir ? dir->list() : Result<std::vector<persist::VersionInfo>>(dir.status());
        if (!all) {
            if (all.status().code() != TIERCKPT_ERR_NOT_FOUND) log::warn("restore: {}", all.status().message());
        } else {
            for (const auto &vi : *all) {
                if (!vi.complete) continue;
                if (vi.manifest.world == static_cast<std::uint32_t>(job.world)) {
                    pv.push_back(vi.version);
                } else {
                    others.push_back(vi.version);
                    others.push_back(vi.manifest.world);
                    if (vi.version >= pother[0]) {
                        pother[0] = vi.version;
                        pother[1] = vi.manifest.world;
                    }
                }
            }
        }
    }
    std::uint64_t n = pv.size();
    MPI_Bcast(&n, 1, MPI_UINT64_T, 0, job.comm);
    pv.resize(n);
    MPI_Bcast(pv.data(), static_cast<int>(n), MPI_UINT64_T, 0, job.comm);
    MPI_Bcast(pother, 2, MPI_UINT64_T, 0, job.comm);
    std::uint64_t no = others.size();
    MPI_Bcast(&no, 1, MPI_UINT64_T, 0, job.comm);
    others.resize(no);
    MPI_Bcast(others.data(), static_cast<int>(no), MPI_UINT64_T, 0, job.comm);
    for (std::size_t i = 0; i + 1 < others.size(); i += 2) {
        out.persistent_other.emplace(others[i], static_cast<std::uint32_t>(others[i + 1]));
    }
    out.persistent.insert(pv.begin(), pv.end());
    out.persist_other_version = pother[0];
    out.persist_other_world = pother[1];
    return out;
}

Result<std::vector<persist::ShardEntry>> persistent_lines(const JobLayout &job, const std::string &persist_dir,
                                                          std::uint64_t version, std::uint32_t saved_world) {
    std::vector<std::uint64_t> flat;  // bytes, crc, bytes, crc, ... by saved rank
    if (job.rank == 0) {
        auto dir = persist::Dir::open(persist_dir, false);
        auto m = dir ? dir->read_manifest(version) : Result<persist::Manifest>(dir.status());
        if (!m || m->world != saved_world || m->shards.size() != saved_world) {
            log::warn("restore: version {} in {}: {}", version, persist_dir,
                      m ? fmt::format("its MANIFEST is of {} ranks, not {}", m->world, saved_world)
                        : m.status().message());
        } else {
            for (const auto &e : m->shards) {
                flat.push_back(e.bytes);
                flat.push_back(e.crc);
            }
        }
    }
    std::uint64_t n = flat.size();
    if (int rc = MPI_Bcast(&n, 1, MPI_UINT64_T, 0, job.comm); rc != MPI_SUCCESS) {
        return mpi_error("restore (MANIFEST lines)", rc);
    }
    flat.resize(n);
    if (int rc = MPI_Bcast(flat.data(), static_cast<int>(n), MPI_UINT64_T, 0, job.comm); rc != MPI_SUCCESS) {
        return mpi_error("restore (MANIFEST lines)", rc);
    }
    std::vector<persist::ShardEntry> lines;
    for (std::size_t i = 0; i + 1 < flat.size(); i += 2) {
        lines.push_back({flat[i], static_cast<std::uint32_t>(flat[i + 1]), true});
    }
    return lines;
}

Result<std::optional<persist::ShardEntry>> persistent_shard(const JobLayout &job, const std::string &persist_dir,
                                                            std::uint64_t version) {
    struct PEntry {
        std::uint64_t bytes;
        std::uint32_t crc;
        std::uint32_t pad;
    };
    std::vector<PEntry> pes;
    int ok = 1;
    if (job.rank == 0) {
        auto dir = persist::Dir::open(persist_dir, false);
        auto m = dir ? dir->read_manifest(version) : Result<persist::Manifest>(dir.status());
        if (!m || m->world != static_cast<std::uint32_t>(job.world)) {
            ok = 0;
            log::warn("restore: version {} in {}: {}", version, persist_dir,
                      m ? std::string("another world size") : m.status().message());
        } else {
            for (const auto &e : m->shards) pes.push_back({e.bytes, e.crc, 0});
        }
    }
    if (int rc = MPI_Bcast(&ok, 1, MPI_INT, 0, job.comm); rc != MPI_SUCCESS) return mpi_error("restore (manifest)", rc);
    if (!ok) return std::optional<persist::ShardEntry>();
    PEntry my{0, 0, 0};
    int rc = MPI_Scatter(pes.data(), sizeof(PEntry), MPI_BYTE, &my, sizeof(PEntry), MPI_BYTE, 0, job.comm);
    if (rc != MPI_SUCCESS) return mpi_error("restore (manifest lines)", rc);
    return std::optional<persist::ShardEntry>(persist::ShardEntry{my.bytes, my.crc, true});
}

}  // namespace tck
