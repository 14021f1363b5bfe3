// The persistent tier, as this rank drives it. Owns the tier's state for the
// job: which versions go there (every Nth committed one), the flush in
// progress, and the statistics.
//
// Threads:
// - the flusher thread (its own) writes this rank's shard of a committed
//   version from the node store to the persistent directory. No MPI. It
//   yields to a save copying into the store (set_staging), between writes.
// - the application's thread calls on_commit, settle (collective: once
//   every rank's shard is written, rank 0 writes the version's MANIFEST and
//   applies retention) and stats.
// - any thread may call wait_for_slot and protected_version (the worker
//   does, before it takes a slot for a replica).
// fmu_ guards what the two threads share; the rest is the application's.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "tierckpt/tierckpt.h"
#include "common/status.hpp"
#include "lib/job.hpp"
#include "store/store_format.hpp"

namespace tck {

// The persistent tier, as this rank sees it (application thread).
struct PersistStats {
    std::uint64_t version = 0;    // newest version this job made complete in the persistent tier
    double ms = 0;                // this rank's newest flush: writing its shard (background)
    std::uint64_t bytes = 0;      // its size
    std::uint64_t failures = 0;   // flushes of the job that failed
    tierckpt_status_t status = TIERCKPT_OK;  // of the newest finished flush
    std::uint64_t skipped = 0;    // Nth versions not flushed: the previous flush was still running
};

class Flusher {
public:
    // dir "": no persistent tier (every call is then a no-op). every >= 1.
    Flusher(const JobLayout &job, store::StoreFile &store, std::string dir, std::uint64_t every, std::uint32_t keep,
            std::uint64_t job_id);
    ~Flusher() { stop(); }
    Flusher(const Flusher &) = delete;
    Flusher &operator=(const Flusher &) = delete;

    bool enabled() const { return !dir_.empty(); }
    const std::string &dir() const { return dir_; }
    void start();  // the flusher thread (when enabled)
    void stop();   // joins it; a flush in progress ends first

    // Application thread. Version committed (this rank's shard in slot):
    // every Nth starts a flush, unless one is still running (counted in
    // PersistStats::skipped). Every rank sees the same commits, so every
    // rank decides alike.
    void on_commit(std::uint64_t version, std::uint32_t slot);
    // Application thread, at a point every rank reaches with the same n
    // (the schedule's decision): flush every nth committed version from
    // now on, counted from the last flush started (or skipped).
    void set_every(std::uint64_t n) { every_ = n ? n : 1; }
    std::uint64_t every() const { return every_; }
    // Collective when a flush is outstanding (which every rank knows
    // alike): learns whether every rank's shard is written; then rank 0
    // writes the manifest and applies retention. block: wait for this
    // rank's flush first (close). The error of a failed flush, which is
    // also in the statistics and logs.
    Status settle(bool block);
    // A save copies into the store (on) or has finished (off): the flush
    // holds off meanwhile, since that copy is what training waits for.
    void set_staging(bool on);
    PersistStats stats() const { return stats_; }

    // Any thread. The version whose slot a flush reads (~0: none): no
    // allocation may take it.
    std::uint64_t protected_version() const { return protect_.load(); }
    // After an allocation failed: waits for a flush holding a slot; true
    // when one did (try again).
    bool wait_for_slot();

private:
    struct Job {
        std::uint64_t version = 0;
        std::uint32_t slot = 0;
        std::uint64_t bytes = 0;
        std::uint32_t crc = 0;
    };
    void loop();

    const JobLayout &job_;
    store::StoreFile &store_;
    const std::string dir_;
    std::uint64_t every_;             // the application's thread (set_every)
    const std::uint32_t keep_;
    const std::uint64_t job_id_;

    // The application's thread only.
    std::uint64_t commits_ = 0;       // versions committed since the last flush started or was skipped
    bool outstanding_ = false;        // started and not yet settled collectively (same on every rank)
    Job current_;                     // the outstanding flush (bytes and crc as the manifest lists them)
    PersistStats stats_;

    std::atomic<std::uint64_t> protect_{~0ull};
    std::atomic<bool> staging_{false};
    std::thread thread_;
    std::mutex fmu_;
    std::condition_variable fcv_;
    std::optional<Job> queued_;  // guarded by fmu_: for the flusher
    bool done_ = true;           // guarded by fmu_
    Status status_;              // guarded by fmu_
    double ms_ = 0;              // guarded by fmu_
    bool stop_ = false;          // guarded by fmu_
};

}  // namespace tck
