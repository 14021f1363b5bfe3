#include "elastic.hpp"

#include <mpi.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <limits>
#include <set>
#include <string>

#include "common/clock.hpp"
#include "common/log.hpp"
#include "lib/collectives.hpp"
#include "lib/restore/reslice.hpp"
#include "store/persist.hpp"

namespace tck {

std::vector<std::vector<int>> saved_copies(const std::vector<InventoryEntry> &inv, const std::vector<char> &bad,
                                           std::uint64_t version, std::uint32_t saved_world) {
    std::vector<std::vector<int>> out(saved_world);
    for (std::size_t i = 0; i < inv.size(); ++i) {
        const InventoryEntry &e = inv[i];
        if (e.version != version || e.world != saved_world || e.rank >= saved_world || bad[i]) continue;
        out[e.rank].push_back(static_cast<int>(i));
    }
    return out;
}

int pick_copy(const std::vector<InventoryEntry> &inv, const std::vector<int> &copies, int my_leader, int my_rank) {
    if (copies.empty()) return -1;
    for (int c : copies) {
        if (static_cast<int>(inv[static_cast<std::size_t>(c)].holder) == my_leader) return c;
    }
    return copies[static_cast<std::size_t>(my_rank) % copies.size()];
}

namespace {

// What a holder sends of each saved manifest it read: this header, then
// count entries (none when it could not read it).
struct ManifestHeader {
    std::uint32_t rank;   // the saved rank
    std::uint32_t count;  // regions
    std::int32_t entry;   // the inventory entry read
    std::uint32_t ok;
};

// A saved shard's manifest, read from this node's store: its record must
// still be the one the inventory listed.
Result<std::vector<store::RegionEntry>> read_manifest(store::StoreFile &store, const InventoryEntry &e) {
    store::SlotRecord rec = store.read_record(e.slot);
    if (!store::StoreFile::record_valid(rec) || rec.version != e.version || rec.rank != e.rank ||
        rec.world != e.world || rec.payload_bytes != e.payload_bytes || rec.offset != e.offset) {
        return error(TIERCKPT_ERR_CORRUPT, "the slot changed under restore");
    }
    return store::parse_shard_manifest(store.base() + rec.offset, e.payload_bytes);
}

bool same_manifest(const std::vector<store::RegionEntry> &a, const std::vector<store::RegionEntry> &b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const auto &x = a[i], &y = b[i];
        if (x.name != y.name || x.bytes != y.bytes || x.layout.kind != y.layout.kind ||
            x.layout.global_offset != y.layout.global_offset || x.layout.global_bytes != y.layout.global_bytes) {
            return false;
        }
    }
    return true;
}

// The names of the checkpoint's regions that some rank of this job
// registered (a rank may hold no slice of an array). Collective: saved is
// the same on every rank (gathered everywhere), so is the bitmap's length.
Result<std::set<std::string>> registered_in_job(MPI_Comm comm, const std::vector<std::vector<store::RegionEntry>> &saved,
                                                const std::vector<store::RegionEntry> &mine) {
    std::vector<std::string> names;
    for (const auto &shard : saved) {
        for (const auto &e : shard) names.push_back(e.name);
    }
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    std::vector<unsigned char> here(names.size(), 0), anywhere(names.size(), 0);
    for (const auto &m : mine) {
        auto it = std::lower_bound(names.begin(), names.end(), m.name);
        if (it != names.end() && *it == m.name) here[static_cast<std::size_t>(it - names.begin())] = 1;
    }
    int rc = MPI_Allreduce(here.data(), anywhere.data(), static_cast<int>(names.size()), MPI_UNSIGNED_CHAR, MPI_MAX,
                           comm);
    if (rc != MPI_SUCCESS) return mpi_error("restore (the regions registered)", rc);
    std::set<std::string> out;
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (anywhere[i]) out.insert(names[i]);
    }
    return out;
}

// Step 1: every saved rank's manifest, read by the holder of its first copy
// and gathered everywhere. A manifest that cannot be read marks its copy
// bad; nullopt on every rank then (the caller tries again without it).
// Saved ranks with no copy in memory (lines non-empty: their shards are
// read from the persistent tier) have their manifest read from there, by
// rank r % world; one that cannot be read clears persistent_ok.
Result<std::optional<std::vector<std::vector<store::RegionEntry>>>>
gather_manifests(TransferContext &ctx, const std::vector<InventoryEntry> &inv, std::vector<char> &bad,
                 const std::vector<std::vector<int>> &copies, std::uint64_t version,
                 const std::vector<persist::ShardEntry> &lines, bool &persistent_ok) {
    const JobLayout &job = ctx.job;
    std::vector<std::uint8_t> blob;
    for (std::uint32_t r = 0; r < copies.size(); ++r) {
        Result<std::vector<store::RegionEntry>> m = error(TIERCKPT_ERR_INTERNAL, "not read");
        int c = Plan::kFromPersistent;
        if (copies[r].empty()) {
            if (static_cast<int>(r % static_cast<std::uint32_t>(job.world)) != job.rank || r >= lines.size()) continue;
            auto dir = persist::Dir::open(ctx.persist_dir, false);
            try {  // sized by a file its user may have made huge: no exception may leave this collective
                m = dir ? dir->read_shard_manifest(version, r, lines[r])
                        : Result<std::vector<store::RegionEntry>>(dir.status());
            } catch (const std::bad_alloc &) {
                m = error(TIERCKPT_ERR_NO_MEMORY, "its manifest does not fit in this process's memory");
            }
            if (!m) log::warn("restore: rank {}'s shard of version {} in the persistent tier: {}", r, version,
                              m.status().message());
        } else {
            c = copies[r].front();
            const InventoryEntry &e = inv[static_cast<std::size_t>(c)];
            if (static_cast<int>(e.holder) != job.rank) continue;
            m = read_manifest(ctx.store, e);
            if (!m) log::warn("restore: rank {}'s shard of version {} in this node's store: {}", r, e.version,
                              m.status().message());
        }
        ManifestHeader h{r, m ? static_cast<std::uint32_t>(m->size()) : 0u, c, m ? 1u : 0u};
        const std::size_t at = blob.size();
        blob.resize(at + sizeof h + h.count * sizeof(store::LayoutEntry));
        std::memcpy(blob.data() + at, &h, sizeof h);
        for (std::uint32_t i = 0; i < h.count; ++i) {
            store::LayoutEntry w = store::to_layout_entry((*m)[i]);
            std::memcpy(blob.data() + at + sizeof h + i * sizeof w, &w, sizeof w);
        }
    }
    auto gathered = allgather_bytes(job.comm, blob.data(), blob.size(), "restore (the saved manifests)");
    if (!gathered) return gathered.status();
    std::vector<std::vector<store::RegionEntry>> saved(copies.size());
    std::vector<char> have(copies.size(), 0);
    bool any_bad = false;
    for (const auto &part : *gathered) {
        std::size_t at = 0;
        while (at + sizeof(ManifestHeader) <= part.size()) {
            ManifestHeader h;
            std::memcpy(&h, part.data() + at, sizeof h);
            at += sizeof h;
            if (h.rank >= saved.size() || h.count > (part.size() - at) / sizeof(store::LayoutEntry)) break;
            if (!h.ok) {
                if (h.entry >= 0 && static_cast<std::size_t>(h.entry) < bad.size()) bad[static_cast<std::size_t>(h.entry)] = 1;
                else persistent_ok = false;
                any_bad = true;
            }
            for (std::uint32_t i = 0; i < h.count; ++i, at += sizeof(store::LayoutEntry)) {
                store::LayoutEntry w;
                std::memcpy(&w, part.data() + at, sizeof w);
                saved[h.rank].push_back(store::from_layout_entry(w));
            }
            have[h.rank] = h.ok ? 1 : 0;
        }
    }
    if (any_bad) return std::optional<std::vector<std::vector<store::RegionEntry>>>();
    for (char h : have) {
        if (!h) return error(TIERCKPT_ERR_INTERNAL, "restore: a saved manifest was not sent");
    }
    return std::optional<std::vector<std::vector<store::RegionEntry>>>(std::move(saved));
}

Source farther(Source a, Source b) { return static_cast<int>(b) > static_cast<int>(a) ? b : a; }

}  // namespace

Result<bool> restore_resliced(TransferContext &ctx, const RestoreRequest &req, const std::vector<InventoryEntry> &inv,
                              std::vector<char> &bad, std::uint64_t version, std::uint32_t saved_world,
                              bool in_persistent, RestoreOutcome &out) {
    const JobLayout &job = ctx.job;
    report::RestoreBreakdown &parts = out.parts;
    LapTimer timer;  // where this rank's time goes (the run report)
    bool persistent_ok = in_persistent && !ctx.persist_dir.empty();
    std::vector<persist::ShardEntry> lines;  // the persistent tier's MANIFEST, once read
    for (int attempt = 0; attempt < 8; ++attempt) {
        // Bytes are counted for the attempt that succeeds alone (an attempt
        // given up on, here or for an older version, leaves none behind).
        parts.local_bytes = parts.peer_bytes = parts.persistent_bytes = 0;
        // Every rank sees the same inventory and marks: they agree here
        // without a collective. A saved shard with no good copy in memory
        // comes from the persistent tier, when it holds the version.
        const auto copies = saved_copies(inv, bad, version, saved_world);
        bool need_disk = false;
        for (const auto &c : copies) need_disk = need_disk || c.empty();
        if (need_disk && !persistent_ok) return false;
        if (need_disk && lines.empty()) {
            auto read = persistent_lines(job, ctx.persist_dir, version, saved_world);
            if (!read) return read.status();
            if (read->empty()) return false;
            lines = std::move(*read);
        }
        const bool fetching = req.any_world;
        std::vector<std::vector<store::RegionEntry>> saved;
        Result<ReslicePlan> plan = ReslicePlan{};
        if (fetching) {
            // Saved rank (rank % saved world)'s shard: the restore that
            // follows takes the replicated regions from it (plan_reslice's
            // replicated_from) and plans the rest.
            plan->shards = {static_cast<std::uint32_t>(job.rank) % saved_world};
        } else {
            auto manifests = gather_manifests(ctx, inv, bad, copies, version, lines, persistent_ok);
            if (!manifests) return manifests.status();
            if (!*manifests) continue;
            saved = std::move(**manifests);
            // After an elastic fetch (req.only), the replicated regions come
            // from the fetched shard, as the program's small objects did.
            std::optional<std::uint32_t> replicated_from;
            if (req.only) replicated_from = static_cast<std::uint32_t>(job.rank) % saved_world;
            plan = plan_reslice(saved, req.layout, static_cast<std::uint32_t>(job.rank), replicated_from);
            auto in_job = registered_in_job(job.comm, saved, req.layout);
            if (!in_job) return in_job.status();
            Status mine = plan ? check_nothing_left_behind(saved, *in_job) : plan.status();
            Status verdict = first_failure(job.comm, mine, "restore (the plan)");
            timer.lap(parts.plan_ms);
            if (verdict.code() == TIERCKPT_ERR_CORRUPT) {
                if (job.rank == 0) log::warn("restore: version {} of {} ranks: {}", version, saved_world, verdict.message());
                return false;
            }
            if (!verdict) {
                if (job.rank == 0) log::info("restore: version {} of {} ranks: {}", version, saved_world, verdict.message());
                return error(verdict.code(), "restore: version {} was saved by {} ranks: {}", version, saved_world,
                             verdict.message());
            }
        }

        std::uint64_t mine_n = plan->shards.size(), rounds = 0;
        int rc = MPI_Allreduce(&mine_n, &rounds, 1, MPI_UINT64_T, MPI_MAX, job.comm);
        if (rc != MPI_SUCCESS) return mpi_error("restore (rounds)", rc);
        bool retry = false;
        Source source = Source::none;
        const char *via = "store";
        for (std::uint64_t k = 0; k < rounds && !retry; ++k) {
            const std::uint32_t r = k < mine_n ? plan->shards[k] : 0;
            const int choice = k >= mine_n          ? Plan::kNothing
                               : copies[r].empty() ? Plan::kFromPersistent
                                                   : pick_copy(inv, copies[r], job.leader(), job.rank);
            Plan round;
            round.version = version;
            round.entry.assign(static_cast<std::size_t>(job.world), Plan::kNothing);
            rc = MPI_Allgather(&choice, 1, MPI_INT, round.entry.data(), 1, MPI_INT, job.comm);
            if (rc != MPI_SUCCESS) return mpi_error("restore (who reads which shard)", rc);
            timer.lap(parts.plan_ms);
            const persist::ShardEntry pentry =
                choice == Plan::kFromPersistent ? lines[r] : persist::ShardEntry{0, 0, false};
            std::vector<SliceCopy> from_r;
            std::vector<std::pair<std::uint64_t, std::uint64_t>> needs;
            if (!fetching && k < mine_n) {
                for (const SliceCopy &c : plan->copies) {
                    if (c.old_rank == r) from_r.push_back(c);
                }
                needs = payload_ranges(saved[r], from_r);
            }
            TransferOutcome moved =
                transfer_shard(ctx, inv, round, pentry, std::nullopt, r, needs.empty() ? nullptr : &needs);
            timer.lap(parts.move_ms);
            parts.move_ms -= moved.verify_ms;
            parts.verify_ms += moved.verify_ms;
            Status st = moved.status;
            const bool reads = choice != Plan::kNothing;
            if (st && reads && !fetching && !same_manifest(moved.shard.regions, saved[r])) {
                st = error(TIERCKPT_ERR_CORRUPT, "its manifest is not the one the restore was planned from");
                if (choice >= 0) moved.bad_entry = choice;
                else moved.persist_bad = true;
            }
            if (st && reads) {
                if (fetching) {
                    st = req.use(moved.shard);
                } else {
                    st = req.place(moved.shard, from_r);
                }
                timer.lap(parts.copy_ms);
                count_bytes(parts, moved.source, moved.bytes);
                source = farther(source, moved.source);
                if (moved.source != Source::local) via = moved.via;
            }
            if (!st) {
                st = error(st.code(), "rank {}: saved rank {}'s shard of version {} from {}: {}", job.rank, r, version,
                           moved.where.empty() ? std::string("?") : moved.where, st.message());
                log::warn("restore: {}", st.message());
            }
            const bool all_ok = all_ranks(job.comm, st.is_ok());
            if (!all_ok) {
                std::vector<int> bads(static_cast<std::size_t>(job.world));
                rc = MPI_Allgather(&moved.bad_entry, 1, MPI_INT, bads.data(), 1, MPI_INT, job.comm);
                if (rc != MPI_SUCCESS) return mpi_error("restore (copies found bad)", rc);
                bool any = false;
                if (any_rank(job.comm, moved.persist_bad)) {
                    persistent_ok = false;  // a shard there is damaged: the tier's copy of this version is out
                    any = true;
                }
                for (int b : bads) {
                    if (b >= 0 && static_cast<std::size_t>(b) < bad.size()) {
                        bad[static_cast<std::size_t>(b)] = 1;
                        any = true;
                    }
                }
                if (!any) return false;  // nothing to leave out: give up on this version
                retry = true;
            }
            timer.lap(parts.agree_ms);
        }
        if (retry) continue;
        parts.saved_world = saved_world;
        out.bytes = parts.local_bytes + parts.peer_bytes + parts.persistent_bytes;
        out.via = via;
        out.result = RestoreResult{true, version, source == Source::none ? Source::local : source};
        if (job.rank == 0) {
            log::info("restore: version {}, saved by {} ranks, {} onto {} ranks", version, saved_world,
                      fetching ? "fetched" : "restored", job.world);
        }
        return true;
    }
    return false;
}

}  // namespace tck
