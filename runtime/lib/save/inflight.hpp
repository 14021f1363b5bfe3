// The save in flight: the one version between save() and its commit vote,
// shared by the application's thread (which stages it and votes on it) and
// the worker thread (which checksums it behind the copy, announces it to the
// partners and counts their answers). Its own lock guards every field; each
// change is a named transition, in the order a save goes through them:
//
//   application: begin (or begin_unstaged) -> staged ... -> end_staging
//   worker:      wait_staged ... -> checksummed (or staging_failed)
//                -> ack ... / expire      (replicated: every partner answered)
//   application: wait_votable -> [the vote] -> committed -> clear
//
// Also the statistics of the newest save (SaveStats), copied out under the
// lock: tierckpt_stats reads them while the worker writes.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include "lib/transport/msg_check.hpp"

namespace tck {

struct SaveStats {
    std::uint64_t version = 0;
    std::uint64_t bytes = 0;       // this rank's shard, manifest included
    double wait_ms = 0;            // waiting for the previous save to commit
    double stall_ms = 0;           // copying into the store: what training waits for
    double checksum_ms = 0;        // in the background
    double replicate_ms = 0;       // from the checksum to the last partner's acknowledgement
    unsigned replicas = 0;         // copies acknowledged
    double ready_ms = 0;           // from the start of its commit to this rank's vote being known (the
                                   // commit's own cost, however late the vote that decides it runs)
    double commit_ms = 0;          // from the start of its commit (the copy, or for a version that was
                                   // pending, the previous verdict) to the commit; 0 until committed
    bool committed = false;
    // The job's, not this save's (filled in by Checkpointer::last_stats).
    std::uint64_t committed_version = 0;  // the newest committed version
    std::uint64_t superseded = 0;         // versions superseded while pending, since open
    std::uint64_t room_waits = 0;         // saves that waited for a verdict for want of room, since open
};

class InFlightSave {
public:
    // ---- the application's thread ----
    // A save with nothing staged (no slot could be had): it still takes part
    // in the vote, and votes no.
    void begin_unstaged(std::uint64_t version, double t_start);
    // Staging begins into slot; the first manifest_bytes of the payload
    // (the manifest) are final.
    void begin(std::uint64_t version, std::uint32_t slot, double t_start, std::uint64_t manifest_bytes,
               const SaveStats &stats);
    // The first upto payload bytes are final.
    void staged(std::uint64_t upto);
    // The copy ended: ok, all payload_bytes are staged; not ok, the worker
    // votes no and the slot stays `writing`.
    void end_staging(bool ok, std::uint64_t payload_bytes, double stall_ms);
    // Blocks until the worker has checksummed and every partner answered
    // (or timed out). Returns this rank's vote.
    bool wait_votable();
    // The same without waiting: nullopt while the worker or a partner is
    // not done yet.
    std::optional<bool> votable() const;
    void committed(double commit_ms);
    // No save in flight any more (committed, refused, or given up).
    void clear();
    bool active() const;
    std::uint64_t version() const;
    // The slot it was staged into; nullopt for a save with nothing staged
    // (no slot could be had).
    std::optional<std::uint32_t> slot() const;
    double t_start() const;

    // ---- the worker thread ----
    struct Staged {
        bool active = false;   // a save is in flight at all
        bool staging = false;  // save() still copies
        bool failed = false;   // save() could not stage
        std::uint64_t upto = 0;  // payload bytes final so far (while staging)
    };
    // Where staging stands; while it runs and has not passed `done`, waits
    // up to 100 ms for more.
    Staged wait_staged(std::uint64_t done);
    // Staging failed: vote no, copy nothing.
    void staging_failed();
    // The shard is checksummed (checksum_ms) and announced at t; partners
    // owe acks until deadline. announced: every partner was reached.
    void checksummed(msgcheck::AckTally acks, double t, double deadline, bool announced, bool no_partners,
                     double checksum_ms);
    // A partner's answer. nullopt: no save in flight (a late answer).
    std::optional<msgcheck::AckTally::Outcome> ack(std::uint32_t from, std::uint64_t version, bool ok, double now);
    struct Expired {
        std::uint64_t version;
        std::size_t acked;
    };
    // After the deadline: the save no longer waits for the missing answers.
    std::optional<Expired> expire(double now);

    // ---- any thread ----
    SaveStats stats() const;

private:
    // This rank's vote once the worker and every partner are done; nullopt
    // before. Call with mu_ held.
    std::optional<bool> vote_locked() const;

    mutable std::mutex mu_;
    std::condition_variable cv_;
    bool active_ = false;
    std::uint64_t version_ = 0;
    std::optional<std::uint32_t> slot_;
    double t_start_ = 0;
    bool staging_ = false;
    bool staging_failed_ = false;
    std::uint64_t staged_upto_ = 0;
    bool checksummed_ = false;
    bool worker_ok_ = true;
    bool replicated_ = false;  // every partner answered (or timed out)
    bool replica_failed_ = false;
    msgcheck::AckTally acks_;  // the partners' answers, from the checksum on
    double deadline_ms_ = 0;
    double t_checksummed_ = 0;
    SaveStats stats_;
};

}  // namespace tck
