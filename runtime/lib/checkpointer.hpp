// The checkpointing core behind the C and C++ APIs, as a facade that wires
// the parts together:
//
//   job.hpp                 the MPI layout (communicators, nodes)
//   save/regions.hpp        the registered regions; staging in and out
//   save/inflight.hpp       the save in flight (shared with the worker)
//   save/commit_vote.hpp    the collective commit vote
//   replication/            the worker thread and the replication protocol
//   restore/                inventory, the pure planner, the transfers
//   flush/flusher.hpp       the persistent tier and its thread
//
// A save returns once its bytes are staged in the node store; the worker
// checksums and copies it to partner nodes in the background; the commit
// vote runs in the next save, wait or close; a restore agrees on the newest
// complete version and verifies every byte it returns.
//
// Threads: every public method runs on the application's thread, which is
// the only one to call MPI (MPI_THREAD_FUNNELED is enough). The worker
// thread (replication/worker.hpp) and the flusher thread (flush/) never do.
#pragma once

#include <mpi.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.hpp"
#include "lib/cuda_stage.hpp"
#include "lib/flush/flusher.hpp"
#include "lib/job.hpp"
#include "lib/options.hpp"
#include "lib/replication/replicator.hpp"
#include "lib/replication/worker.hpp"
#include "lib/restore/restorer.hpp"
#include "lib/restore/shard.hpp"
#include "lib/save/commit_vote.hpp"
#include "lib/save/inflight.hpp"
#include "lib/save/regions.hpp"
#include "lib/schedule/save_schedule.hpp"
#include "store/store_format.hpp"

namespace tck {

class Checkpointer {
public:
    static Result<std::unique_ptr<Checkpointer>> open(MPI_Comm comm, const Options &opts);
    ~Checkpointer();
    Checkpointer(const Checkpointer &) = delete;
    Checkpointer &operator=(const Checkpointer &) = delete;

    // Regions are read only inside save and restore (save copies them into
    // the store before it returns), so the set may change between saves:
    // each save's manifest lists the regions it holds. Names are unique;
    // the check is a hash lookup, so registering n regions costs O(n).
    // layout: a slice of a global array, or replicated (tierckpt(3),
    // tierckpt_register_slice); checked across the job at the next save.
    Status add_region(const std::string &name, void *ptr, std::size_t bytes, const store::RegionLayout &layout = {});
    void clear_regions();

    // Collective: every rank calls it with the same, increasing version.
    // Returns once the regions are staged. A save while the previous one is
    // in flight votes on that one; when it is not decided yet, this version
    // waits behind it unannounced (pending) if every rank's store holds it
    // beside the newest committed version and the one in flight, and
    // otherwise every rank waits for the previous verdict. A pending version
    // is superseded by the next save unless the one in flight was decided
    // by then.
    Status save(std::uint64_t version);
    // Whether a save is due at the application's step (its own counter,
    // increasing), by the schedule of TIERCKPT_CKPT_INTERVAL (auto by
    // default; save_schedule.hpp). Local: never communicates; every rank
    // gets the same answer when every rank calls it at the same steps,
    // because the schedule changes only inside save(), from values
    // reduced over the job.
    Result<bool> due(std::uint64_t step);
    // The newest schedule decision (count 0: none yet) and its settings.
    const schedule::Decision &schedule_decision() const { return schedule_->last(); }
    const schedule::RunConfig &schedule_config() const { return schedule_->config(); }
    // True once the newest save has committed (or none is in flight).
    // Never blocks, and never starts the commit vote: that happens in the
    // next save, wait or close, which every rank calls in the same order.
    Result<bool> test();
    // Collective: decides the save in flight and the pending one behind it;
    // the status is the newest save's.
    Status wait();
    // Collective. Fills the regions with the newest version complete
    // across the job; after fetch(), from the shard it holds (fetching
    // nothing again).
    Result<RestoreResult> restore();
    // Collective. The first half of restore, for a program that learns its
    // state's layout from the checkpoint: finds the newest version complete
    // across the job, brings this rank's shard into node memory and verifies
    // it, exactly as restore does, but copies nothing into regions and needs
    // none registered. The shard is held until restore(), save(), another
    // fetch(), drop_fetched() or close(). A copy found bad is skipped for the
    // next one, as in restore.
    // any_world (set alike on every rank): versions saved by another number
    // of ranks count too; for one of them this rank holds saved rank
    // (rank % saved world)'s shard, and restore() then restores that
    // version elastically (the registered regions slices and replicated
    // ones) and no other.
    Result<RestoreResult> fetch(bool any_world = false);
    // The number of ranks that saved the fetched version (0: none held).
    std::uint32_t fetched_saved_world() const {
        return fetched_ ? static_cast<std::uint32_t>(fetched_->parts.saved_world) : 0;
    }
    struct FetchedRegion {
        std::string name;
        std::uint64_t bytes = 0;
        std::uint64_t offset = 0;  // in the shard's payload
    };
    // The regions of the shard fetch() holds, in the order they were saved
    // (TIERCKPT_ERR_NOT_FOUND: none is held).
    Result<const std::vector<FetchedRegion> *> fetched_regions() const;
    // Copies bytes of region name of the held shard, from offset, to dst
    // (host memory).
    Status read_fetched(const std::string &name, std::uint64_t offset, void *dst, std::uint64_t bytes) const;
    void drop_fetched() { fetched_.reset(); }
    // Collective: true when every rank passed ok. Lets ranks agree, over
    // the checkpointer's own communicator, before a collective they would
    // otherwise enter unevenly (tierckpt.dcp: skip a save any rank failed).
    Result<bool> agree(bool ok);
    Status close();

    // The newest save's statistics, copied under the lock the worker
    // writes them under.
    SaveStats last_stats() const {
        SaveStats s = pending_ ? pending_->stats : save_.stats();
        s.committed_version = committed_version_;
        s.superseded = superseded_;
        s.room_waits = room_waits_;
        return s;
    }
    PersistStats persist_stats() const { return flusher_ ? flusher_->stats() : PersistStats{}; }
    // The ranks that keep copies of this rank's shards.
    const std::vector<int> &partners() const {
        static const std::vector<int> none;
        return repl_ ? repl_->partners() : none;
    }
    const char *transport_name() const { return repl_ ? repl_->transport_name() : "none"; }
    // How regions reach the store: host (no device region), cuda-direct
    // or cuda-bounce (see cuda_stage.hpp).
    cuda::Path stage_path() const { return regions_->stage_path(); }
    std::uint64_t committed_version() const { return committed_version_; }
    int rank() const { return job_.rank; }
    int world() const { return job_.world; }

private:
    Checkpointer() = default;
    struct Fetched {
        Shard shard;
        std::vector<FetchedRegion> regions;
        std::unordered_map<std::string, std::size_t> by_name;
        double ms = 0;             // the fetch's time, for the run report
        const char *via = "none";  // how the shard came, for the run report
        report::RestoreBreakdown parts;  // where the fetch's time went, for the run report
    };

    Status join_run();  // collective: one run per node store (see the .cpp)
    // A version staged behind the save in flight, not announced yet.
    struct Pending {
        std::optional<std::uint32_t> slot;  // nullopt: no slot could be had (it votes no)
        std::uint64_t manifest = 0;         // bytes of the manifest at the slot's start
        bool staged = false;                // the copy succeeded
        SaveStats stats;
    };

    Status save_and_stage(std::uint64_t version);
    Result<std::uint32_t> take_slot(std::uint64_t version, std::uint64_t need);
    Status stage(std::uint64_t version, Result<std::uint32_t> slot, double wait_ms, bool in_flight);
    void supersede_pending(std::uint64_t by);
    void promote_pending();
    Result<CommitVote::Ballot> run_vote(CommitVote::Ballot mine);
    Status conclude(CommitVote::Verdict verdict);
    Status commit_all();
    // The newest complete version; use(shard) copies or holds it.
    // any_world: a fetch that takes versions of other world sizes too;
    // only: the one version (and world size) to try.
    Result<RestoreOutcome> restore_newest(bool fetching, bool any_world = false,
                                          std::optional<std::pair<std::uint64_t, std::uint32_t>> only = {});
    // parts: the fetch's breakdown, to which the copy and the agreements are added.
    Result<RestoreResult> restore_fetched(report::RestoreBreakdown &parts);
    // After a restore: the job goes on from version.
    void restored(std::uint64_t version);
    void report_restore(const RestoreResult &r, std::uint64_t bytes, const char *via, double ms,
                        const report::RestoreBreakdown &parts) const;
    std::uint64_t protect_from() const;
    // Collective (inside save): the job's measurements, reduced, and the
    // next due step.
    Status decide_schedule(std::uint64_t version);
    Status check_layout();
    bool room_for_pipeline(std::uint64_t need) const;

    JobLayout job_;
    bool we_initialized_mpi_ = false;
    std::optional<store::StoreFile> store_;
    std::unique_ptr<RegionSet> regions_;
    InFlightSave save_;
    std::optional<Pending> pending_;
    std::uint64_t superseded_ = 0;  // versions superseded while pending (the same on every rank)
    std::uint64_t room_waits_ = 0;  // saves that waited for the previous verdict: no room (the same on every rank)
    std::unique_ptr<Flusher> flusher_;
    std::unique_ptr<Replicator> repl_;
    std::unique_ptr<Worker> worker_;
    std::optional<Fetched> fetched_;
    std::optional<schedule::SaveSchedule> schedule_;
    double in_save_ms_ = 0;         // time this rank spent in save() and wait(), left out of the step time
    std::uint64_t due_step_ = 0;    // the step of the newest due() call
    bool have_due_step_ = false;
    double last_commit_s_ = 0;                // the newest committed version: its start to this rank's vote ready
    std::uint64_t last_logged_steps_ = 0;     // rank 0: the interval it last logged
    std::uint64_t layout_checked_ = 0;  // the regions' generation the job last agreed on (0: none had a layout)

    // Versions (the application's thread; protect_from_ is read by the
    // worker, for the replica slots it may take).
    std::uint64_t committed_version_ = 0;
    bool have_committed_ = false;
    std::uint64_t last_version_ = 0;
    bool have_last_ = false;
    std::atomic<std::uint64_t> protect_from_{0};

    bool run_report_ = false;           // TIERCKPT_RUN_REPORT
    std::uint64_t expect_version_ = 0;  // TIERCKPT_EXPECT_VERSION: committed before a relaunch
    bool closed_ = false;
};

}  // namespace tck
