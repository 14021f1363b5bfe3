// The checkpointing core behind the C and C++ APIs: registered regions, a
// save that returns once its bytes are staged in the node store, checksum
// and copies to partner nodes in the background, a collective commit vote
// in the next save, wait or close, and a restore that agrees on the newest
// complete version and verifies every byte it returns.
//
// Threads: MPI is called only from the application's thread, inside API
// calls (MPI_THREAD_FUNNELED is enough). The worker thread checksums and
// replicates through the transport, never through MPI.
#pragma once

#include <mpi.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "../common/status.hpp"
#include "../common/unique_fd.hpp"
#include "persist.hpp"
#include "cuda_stage.hpp"
#include "peer_watch.hpp"
#include "store_format.hpp"
#include "transport/msg_check.hpp"
#include "transport/transport.hpp"

namespace tck {

struct Options {
    std::string store_path;        // TIERCKPT_STORE
    std::uint64_t store_bytes = 0; // with a path that does not exist yet: create it this large
    bool prefault = true;          // TIERCKPT_PREFAULT
    std::uint64_t job_id = 0;      // TIERCKPT_JOB_ID
    unsigned replicas = 0;         // TIERCKPT_REPLICAS: copies on other nodes
    std::string transport = "auto";  // TIERCKPT_TRANSPORT: ucx, ofi or auto
    int replica_timeout_ms = 60000;  // TIERCKPT_REPLICA_TIMEOUT_MS
    std::string persist_dir;         // TIERCKPT_PERSIST_DIR: the persistent tier ("" : none)
    std::uint64_t persist_every = 10;  // TIERCKPT_PERSIST_EVERY: flush every Nth committed version
    std::uint32_t persist_keep = 3;    // TIERCKPT_PERSIST_KEEP: persistent versions to keep
    int peer_timeout_ms = 10000;     // TIERCKPT_PEER_TIMEOUT_MS (0: do not watch peers)
    std::string failure_domain;      // TIERCKPT_FAILURE_DOMAIN: this node's (rack, switch...); "": its own
    bool cuda = true;                // TIERCKPT_CUDA: look for device regions (with the CUDA tier)

    // From the variables the SPANK plugin sets (see tierckpt(7)).
    static Result<Options> from_env();
    // key=value: store, store_bytes, prefault, job_id, replicas, transport,
    // replica_timeout_ms, peer_timeout_ms, failure_domain, persist_dir, persist_every,
    // persist_keep, cuda.
    Status set(const std::string &key, const std::string &value);
};

// The persistent tier, as this rank sees it (application thread).
struct PersistStats {
    std::uint64_t version = 0;    // newest version this job made complete in the persistent tier
    double ms = 0;                // this rank's newest flush: writing its shard (background)
    std::uint64_t bytes = 0;      // its size
    std::uint64_t failures = 0;   // flushes of the job that failed
    tierckpt_status_t status = TIERCKPT_OK;  // of the newest finished flush
    std::uint64_t skipped = 0;    // Nth versions not flushed: the previous flush was still running
};

struct SaveStats {
    std::uint64_t version = 0;
    std::uint64_t bytes = 0;       // this rank's shard, manifest included
    double wait_ms = 0;            // waiting for the previous save to commit
    double stall_ms = 0;           // copying into the store: what training waits for
    double checksum_ms = 0;        // in the background
    double replicate_ms = 0;       // from the checksum to the last partner's acknowledgement
    unsigned replicas = 0;         // copies acknowledged
    double commit_ms = 0;          // from save() to commit, 0 until committed
    bool committed = false;
};

// One shard somewhere in the job's node stores, as restore sees it. Plain
// bytes: it travels through MPI_Allgatherv.
struct InventoryEntry {
    std::uint64_t version;
    std::uint64_t payload_bytes;
    std::uint32_t rank;
    std::uint32_t holder;  // comm rank of the leader of the node whose store holds it
    std::uint32_t slot;
    std::uint32_t crc;
    std::uint32_t committed;  // the owner marked this version committed
    std::uint32_t nregions;   // regions in the shard
    std::uint64_t offset;     // where the payload lies in the holder's store (for transport reads)
};

enum class Source { none, local, peer, persistent };
const char *source_name(Source s);

struct RestoreResult {
    bool found = false;
    std::uint64_t version = 0;
    Source source = Source::none;  // where this rank's shard came from
};

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
    Status add_region(const std::string &name, void *ptr, std::size_t bytes);
    void clear_regions();

    // Collective: every rank calls it with the same, increasing version. A
    // save while the previous one is in flight first waits for it to commit.
    Status save(std::uint64_t version);
    // True once the newest save has committed (or none is in flight).
    // Never blocks, and never starts the commit vote: that happens in the
    // next save, wait or close, which every rank calls in the same order.
    Result<bool> test();
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
    Result<RestoreResult> fetch();
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

    const SaveStats &last_stats() const { return stats_; }
    const PersistStats &persist_stats() const { return pstats_; }
    // The ranks that keep copies of this rank's shards.
    const std::vector<int> &partners() const { return partners_; }
    const char *transport_name() const { return transport_ ? transport_->name() : "none"; }
    // How regions reach the store: host (no device region), cuda-direct
    // or cuda-bounce (see cuda_stage.hpp).
    cuda::Path stage_path() const;
    std::uint64_t committed_version() const { return committed_version_; }
    int rank() const { return rank_; }
    int world() const { return world_; }

private:
    Checkpointer() = default;
    struct Region {
        std::string name;
        void *ptr;
        std::size_t bytes;
        cuda::PtrInfo mem;  // device memory, and on which device
    };
    struct InFlight {
        std::uint64_t version = 0;
        std::uint32_t slot = 0;
        bool staging = false;         // guarded by mu_: save() is still copying into the slot
        bool staging_failed = false;  // guarded by mu_
        bool checksummed = false;  // guarded by mu_
        bool worker_ok = true;     // guarded by mu_
        bool replicated = false;   // guarded by mu_: every partner answered (or timed out)
        msgcheck::AckTally acks;   // guarded by mu_: the partners' answers, from the checksum on
        bool replica_failed = false;  // guarded by mu_
        double deadline_ms = 0;    // guarded by mu_
        double t_checksummed = 0;  // guarded by mu_
        bool vote_started = false;
        int local_ok = 0, global_ok = 0;
        MPI_Request req = MPI_REQUEST_NULL;
        double t_start = 0;
    };

    std::uint64_t payload_bytes() const;
    void worker_loop();
    void worker_checksum();
    void handle_msg(const TransportMsg &m);
    void drop_msg(const TransportMsg &m, const char *why);
    void send_heartbeats(bool force);
    void check_peers();
    [[noreturn]] void peer_lost(int peer, double silent_ms);
    void report_restore(const RestoreResult &r, double ms) const;
    void wake_worker();
    // Hands fn to the worker thread (the only one that may touch the
    // transport after open) and returns at once; wait_worker_task() waits
    // for it and returns what it returned. One task at a time.
    void post_worker_task(std::function<Status()> fn);
    Status wait_worker_task();
    // Worker: reads bytes at offset in peer's store into dst (in this
    // node's store) in pieces, heartbeating between them.
    // progress (if given) follows the bytes landed, for a restore that
    // checksums behind the transfer.
    Status pull(int peer, std::uint64_t offset, std::uint8_t *dst, std::uint64_t bytes,
                std::atomic<std::uint64_t> *progress = nullptr);
    Status join_run(const char *host);  // collective: one run per node store (see the .cpp)
    Status setup_replication(const Options &opts);
    // The ranks on the node whose leader is node_leader, in order.
    std::vector<int> ranks_on(int node_leader) const;
    Result<bool> progress(bool block);
    // The newest version complete in node memory, or in the persistent
    // tier for the shards memory lacks.
    Result<RestoreResult> restore_newest();
    // plan[r]: the inventory entry rank r restores from, or -1: from the
    // persistent tier (`pentry`: this rank's shard there, of `version`).
    Status restore_attempt(const std::vector<InventoryEntry> &inv, const std::vector<int> &plan,
                           std::uint64_t version, const persist::ShardEntry &pentry, int &bad_entry,
                           bool &persist_bad, Source &source);
    // Copies a shard into the regions after checking it against crc
    // (crc_checked: the caller has). In a fetch (fetch_only_) it holds the
    // checked shard in fetched_ instead: owner, when given, owns the bytes
    // (a shard read over MPI or from the persistent tier) and is moved there.
    Status unpack(const std::uint8_t *payload, std::uint64_t bytes, std::uint32_t crc, bool crc_checked = false,
                  std::vector<std::uint8_t> *owner = nullptr);
    // Whether the registered regions are those a shard's manifest lists
    // (names and sizes, in order).
    Status match_regions(const std::vector<store::RegionEntry> &entries) const;
    // Copies a matching shard's payload (manifest first) into the regions.
    Status copy_into_regions(const std::uint8_t *payload);
    // restore() after fetch(): the job agrees that every rank's regions
    // match its held shard, and only then copies.
    Result<RestoreResult> restore_fetched();
    Status commit_inflight();
    // Collective (when a flush is outstanding, which every rank knows
    // alike): learns whether every rank's shard is written; then rank 0
    // writes the manifest and applies retention. block: wait for this
    // rank's flush first (close).
    Status persist_poll(bool block);
    void start_flush(std::uint64_t version, std::uint32_t slot);
    void flusher_loop();
    std::uint64_t protect_from() const { return std::min(protect_from_.load(), flush_protect_.load()); }
    // After an allocation failed: waits for a flush holding a slot; true
    // when one did (try again).
    bool wait_for_flush_slot();
    Status stage_regions(std::uint8_t *dst, bool crash, const std::function<void(std::uint64_t)> &staged);

    MPI_Comm comm_ = MPI_COMM_NULL, node_comm_ = MPI_COMM_NULL;
    bool we_initialized_mpi_ = false;
    int rank_ = 0, world_ = 1, node_rank_ = 0, node_size_ = 1;
    // Threads for the checksums the application waits for (behind save's
    // copy, behind restore's pull, restore's verification): this rank's
    // share of the node's CPUs (its binding, or the node's divided among
    // its ranks, which save and restore at once), at most 8.
    unsigned crc_threads_ = 1;
    std::vector<int> leader_of_;  // for every rank: the comm rank of its node's leader
    std::optional<store::StoreFile> store_;
    bool cuda_enabled_ = true;                // Options::cuda
    std::unique_ptr<cuda::Stager> stager_;    // with the first device region; before store_ goes
    bool stage_pieces_ = false;               // TIERCKPT_TEST_STAGE_PIECES: host regions in pieces too
    std::uint64_t staged_upto_ = 0;           // guarded by mu_: payload bytes of the save in flight staged
    std::vector<Region> regions_;
    std::unordered_set<std::string> region_names_;  // of regions_
    // The shard fetch() holds: in this node's store (its own, or a copy just
    // pulled into a free slot, which no save can take while it is held), or
    // in owned.
    struct HeldSlot {
        std::uint32_t slot = 0;
        std::uint64_t version = 0;
        std::uint32_t rank = 0;
    };
    struct Fetched {
        std::uint64_t version = 0;
        Source source = Source::none;
        const std::uint8_t *payload = nullptr;
        std::uint64_t bytes = 0;
        std::uint32_t crc = 0;
        std::vector<std::uint8_t> owned;
        std::optional<HeldSlot> slot;  // the store slot payload lies in, if it does
        std::vector<FetchedRegion> regions;
        std::unordered_map<std::string, std::size_t> by_name;
        double ms = 0;  // the fetch's time, for the run report
    };
    std::optional<Fetched> fetched_;
    bool fetch_only_ = false;  // restore_newest runs for fetch(): verify and hold, copy nothing
    // The persistent tier.
    struct FlushJob {
        std::uint64_t version = 0;
        std::uint32_t slot = 0;
        std::uint64_t bytes = 0;
        std::uint32_t crc = 0;
    };
    std::string persist_dir_;
    std::uint64_t persist_every_ = 10;
    std::uint32_t persist_keep_ = 3;
    std::uint64_t job_id_ = 0;
    std::uint64_t commits_ = 0;            // versions committed by this run
    bool flush_outstanding_ = false;       // started and not yet settled collectively (same on every rank)
    std::uint64_t flush_version_ = 0;
    std::uint64_t flush_bytes_ = 0;
    std::uint32_t flush_crc_ = 0;
    PersistStats pstats_;
    std::atomic<std::uint64_t> flush_protect_{~0ull};
    std::atomic<bool> staging_{false};     // a save copies into the store: the flush holds off
    void set_staging(bool on);             // and wakes the flusher when off  // the flushing shard's version, while it is read
    std::thread flusher_;
    std::mutex fmu_;
    std::condition_variable fcv_;
    std::optional<FlushJob> flush_job_;    // guarded by fmu_: queued for the flusher
    bool flush_done_ = true;               // guarded by fmu_
    Status flush_status_;                  // guarded by fmu_
    double flush_ms_ = 0;                  // guarded by fmu_
    bool flush_stop_ = false;              // guarded by fmu_

    std::uint64_t committed_version_ = 0;
    bool have_committed_ = false;
    std::uint64_t last_version_ = 0;
    bool have_last_ = false;
    SaveStats stats_;
    std::optional<InFlight> inflight_;
    std::atomic<std::uint64_t> protect_from_{0};  // read by the worker for replica slots
    std::unique_ptr<Transport> transport_;
    std::vector<int> partners_;
    std::vector<int> sources_;                // the ranks whose shards this rank keeps copies of
    std::vector<std::uint64_t> store_bytes_;  // every rank's node store size (replication only)
    msgcheck::DropLog drops_;                 // worker thread only
    std::vector<std::string> hosts_;  // every rank's node name
    std::optional<PeerWatch> watch_;  // worker thread only, after open
    bool run_report_ = false;         // TIERCKPT_RUN_REPORT
    std::uint64_t expect_version_ = 0;  // TIERCKPT_EXPECT_VERSION: committed before a relaunch
    std::uint64_t restored_bytes_ = 0;
    const char *restored_via_ = "none";  // how this rank's shard came: store, ucx/ofi, mpi, file
    int replica_timeout_ms_ = 60000;
    UniqueFd wake_fd_;  // eventfd: the application's thread wakes the worker

    std::thread worker_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
    bool work_pending_ = false;
    std::function<Status()> task_;  // guarded by mu_: posted for the worker
    std::atomic<std::uint64_t> pulled_{0};  // bytes of a restore's pull landed so far (the worker's)
    bool task_done_ = true;         // guarded by mu_
    Status task_status_;            // guarded by mu_
    bool closed_ = false;
};

}  // namespace tck
