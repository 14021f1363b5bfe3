#include "restorer.hpp"

#include <mpi.h>

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "common/clock.hpp"
#include "common/log.hpp"
#include "lib/collectives.hpp"
#include "lib/restore/elastic.hpp"
#include "lib/restore/planner.hpp"

namespace tck {

Result<RestoreOutcome> restore_newest(TransferContext &ctx, const RestoreRequest &req) {
    const JobLayout &job = ctx.job;
    RestoreOutcome out;
    report::RestoreBreakdown &parts = out.parts;
    LapTimer timer;  // where this rank's time goes (the run report)
    auto inventory = take_inventory(job, ctx.store, ctx.persist_dir);
    if (!inventory) return inventory.status();
    timer.lap(parts.inventory_ms);
    Planner planner(inventory->entries, inventory->persistent, job.leader_of);
    const std::optional<std::uint64_t> newest_committed = planner.newest_committed();
    // The versions to try, newest first: this world size's, and (when the
    // registered regions can move between ranks) those other world sizes
    // saved in the node stores, restored elastically.
    std::set<std::pair<std::uint64_t, std::uint32_t>, std::greater<>> candidates;
    for (std::uint64_t v : planner.candidates()) candidates.emplace(v, static_cast<std::uint32_t>(job.world));
    // Decided for the job (a rank may hold only opaque regions while the
    // others hold slices): every rank must take the same path, and one that
    // cannot fill its regions says so in the plan's verdict.
    // A fetch of any world size, or the restore of the version of another
    // world size it found, is elastic even where only opaque regions are
    // registered (the plan then refuses them, with the fix).
    const bool elastic = any_rank(
        job.comm, req.any_world || (req.only && req.only->second != static_cast<std::uint32_t>(job.world)) ||
                      std::any_of(req.layout.begin(), req.layout.end(), [](const store::RegionEntry &e) {
                          return e.layout.kind != store::RegionKind::opaque;
                      }));
    // The newest version of another world size some owner marked committed:
    // restore must not start from scratch while it may be lost.
    std::optional<std::pair<std::uint64_t, std::uint32_t>> other_committed;
    if (elastic) {
        // A version of N ranks is tried only when N shards of it are listed
        // (a store record may claim any world size: nothing is sized by an
        // unchecked one) or the persistent tier holds it complete.
        std::map<std::pair<std::uint64_t, std::uint32_t>, std::uint64_t> listed;
        for (const auto &e : inventory->other) {
            ++listed[{e.version, e.world}];
            if (e.committed && (!other_committed || e.version > other_committed->first)) {
                other_committed = std::make_pair(e.version, e.world);
            }
        }
        for (const auto &[vw, n] : listed) {
            if (n >= vw.second) candidates.insert(vw);
        }
        for (const auto &vw : inventory->persistent_other) candidates.insert(vw);
    }
    if (req.only) {
        const bool listed = candidates.count(*req.only) > 0;
        candidates.clear();
        if (listed) candidates.insert(*req.only);
    }
    std::vector<char> other_bad(inventory->other.size(), 0);
    Status last_error;
    for (const auto &[v, world] : candidates) {
        if (world != static_cast<std::uint32_t>(job.world)) {
            auto done = restore_resliced(ctx, req, inventory->other, other_bad, v, world,
                                         inventory->persistent_other.count({v, world}) > 0, out);
            if (!done) return done.status();
            if (*done) {
                if (newest_committed && v < *newest_committed && job.rank == 0) {
                    log::warn("restore: version {} was committed but rank(s) {} have no copy of it left in any node "
                              "store; restored the older version {}",
                              *newest_committed, planner.lost_ranks(*newest_committed), v);
                } else if (other_committed && v < other_committed->first && job.rank == 0) {
                    log::warn("restore: version {} (saved by {} ranks) was committed but not every saved shard has a "
                              "good copy left; restored the older version {}",
                              other_committed->first, other_committed->second, v);
                }
                return out;
            }
            continue;
        }
        for (int attempt = 0; attempt < 8; ++attempt) {
            std::optional<Plan> plan = planner.plan(v);
            if (!plan) break;  // incomplete: older version
            persist::ShardEntry pentry{0, 0, false};
            if (plan->uses_persistent()) {
                auto pe = persistent_shard(job, ctx.persist_dir, v);
                if (!pe) return pe.status();
                if (!*pe) {
                    planner.exclude_persistent(v);
                    continue;  // plans again without the persistent copy: breaks out
                }
                pentry = **pe;
            }
            // Regions that cannot match (another count) are refused before
            // any byte moves: a probe with fewer regions (tierckpt.torch
            // asks with its small-object region alone) must not fetch
            // whole shards from peers.
            const int my_plan = plan->entry[static_cast<std::size_t>(job.rank)];
            const std::uint32_t shard_regions =
                my_plan >= 0 ? planner.entries()[static_cast<std::size_t>(my_plan)].nregions : 0;
            const bool count_bad = req.region_count && my_plan >= 0 && shard_regions != *req.region_count;
            if (any_rank(job.comm, count_bad)) {
                Status st = count_bad ? error(TIERCKPT_ERR_INVALID, "the checkpoint has {} regions, {} are registered",
                                              shard_regions, *req.region_count)
                                      : error(TIERCKPT_ERR_INVALID,
                                              "restore: another rank's regions do not match the checkpoint");
                log::info("restore: {}", st.message());
                return st;
            }
            timer.lap(parts.plan_ms);
            TransferOutcome moved = transfer_shard(ctx, planner.entries(), *plan, pentry, req.payload_bytes);
            timer.lap(parts.move_ms);
            parts.move_ms -= moved.verify_ms;
            parts.verify_ms += moved.verify_ms;
            out.bytes = moved.bytes;
            out.via = moved.via;
            Status st = moved.status;
            if (st) {
                st = req.use(moved.shard);
                timer.lap(parts.copy_ms);
                // A shard that came whole but could not be copied into device
                // memory: another copy is tried (as one that did not come).
                if (!st && st.code() != TIERCKPT_ERR_INVALID) {
                    if (moved.source == Source::persistent) moved.persist_bad = true;
                    else if (moved.pulled) moved.bad_entry = my_plan;
                }
            }
            if (!st && !moved.where.empty()) {
                st = error(st.code(), "rank {}: shard of version {} from {}: {}", job.rank, v, moved.where,
                           st.message());
            }
            const bool all_ok = all_ranks(job.comm, st.is_ok());
            timer.lap(parts.agree_ms);
            if (all_ok) {
                if (newest_committed && v < *newest_committed && job.rank == 0) {
                    log::warn("restore: version {} was committed but rank(s) {} have no copy of it left in any node "
                              "store; restored the older version {}",
                              *newest_committed, planner.lost_ranks(*newest_committed), v);
                }
                out.result = RestoreResult{true, v, moved.source};
                // What an elastic attempt on a newer version counted is not this one's.
                parts.local_bytes = parts.peer_bytes = parts.persistent_bytes = 0;
                count_bytes(parts, moved.source, moved.bytes);
                parts.saved_world = static_cast<std::uint64_t>(job.world);
                return out;
            }
            if (!st) {
                // Regions that do not match the checkpoint are the caller's
                // error, returned to it: no warning of our own.
                if (st.code() == TIERCKPT_ERR_INVALID) log::info("restore: {}", st.message());
                else log::warn("restore: {}", st.message());
                last_error = st;
            }
            // Drop the copies found bad and plan again.
            std::vector<int> bads(static_cast<std::size_t>(job.world));
            MPI_Allgather(&moved.bad_entry, 1, MPI_INT, bads.data(), 1, MPI_INT, job.comm);
            bool any = false;
            if (any_rank(job.comm, moved.persist_bad)) {
                planner.exclude_persistent(v);  // a shard there is damaged: this version's persistent copy is out
                any = true;
            }
            for (int b : bads) {
                if (b >= 0) {
                    planner.exclude_copy(b);
                    any = true;
                }
            }
            if (any_rank(job.comm, !st && st.code() == TIERCKPT_ERR_INVALID)) {
                return last_error ? error(TIERCKPT_ERR_INVALID,
                                          "restore: another rank's regions do not match the checkpoint")
                                  : last_error;
            }
            timer.lap(parts.agree_ms);
            if (!any) break;  // nothing to exclude: give up on this version
        }
    }
    RestoreFacts facts;
    facts.world = job.world;
    facts.persist_dir = ctx.persist_dir;
    facts.store_other_world = inventory->store_other_world;
    facts.persist_other_version = inventory->persist_other_version;
    facts.persist_other_world = inventory->persist_other_world;
    facts.expect_version = req.expect_version;
    if (other_committed) {
        facts.other_committed = other_committed->first;
        facts.other_committed_world = other_committed->second;
    }
    // With req.only, the caller says why its one version was not restored;
    // the verdicts are about the versions it did not ask for.
    if (!req.only) {
        if (Status verdict = verdict_nothing_complete(planner, facts); !verdict) return verdict;
        if (!planner.candidates().empty() && !last_error) {
            log::info("restore: no version is complete across the job's node stores");
        }
    }
    out.bytes = 0;
    out.via = "none";
    parts.local_bytes = parts.peer_bytes = parts.persistent_bytes = 0;
    return out;
}

}  // namespace tck
