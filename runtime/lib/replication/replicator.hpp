// The replication protocol: a staged shard is checksummed and announced to
// its partners (`ready`); a partner pulls it from the owner's registered
// store into a replica slot of its own, verifies it and answers (`done`);
// the owner counts the answers for the commit vote (InFlightSave). Around
// it: the heartbeat thread that watches the peers (heartbeat.hpp; its
// verdict on a silent one ends the process), and the reads restore makes
// over the transport.
//
// Threads: setup() is collective, on the application's thread, at open.
// Everything else runs on the worker thread (worker.hpp); after setup only
// the worker touches the transport. partners(), has_transport() and
// transport_name() are fixed after setup and may be read anywhere.
// peer_lost() runs on the heartbeat thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "common/status.hpp"
#include "lib/job.hpp"
#include "lib/options.hpp"
#include "lib/replication/heartbeat.hpp"
#include "lib/save/inflight.hpp"
#include "lib/transport/msg_check.hpp"
#include "lib/transport/transport.hpp"
#include "store/store_format.hpp"

namespace tck {

class Replicator {
public:
    // What the replication needs of the other parts, callable from the worker.
    struct Hooks {
        std::function<std::uint64_t()> protect_from;  // versions >= this keep their slots
        std::function<std::uint64_t()> pinned;        // and this one (a flush reads it; kNoVersion: none)
        std::function<bool()> wait_for_flush_slot;     // Flusher::wait_for_slot
    };
    // Collective. Without replicas (or with one node) there is no transport:
    // shards are still checksummed, and restore moves them over MPI.
    static Result<std::unique_ptr<Replicator>> setup(const JobLayout &job, store::StoreFile &store,
                                                     const Options &opts, Hooks hooks);

    // ---- the worker thread ----
    // Checksums the save in flight behind save()'s copy, marks the slot
    // complete and announces it to the partners.
    void checksum_and_announce(InFlightSave &save);
    // One round: the peers' messages, heartbeats over the transport, the
    // save's replica deadline.
    void serve(InFlightSave &save);
    // Sleeps until a message, wake_fd or a timeout (100 ms with a transport).
    void wait(int wake_fd);
    // Reads bytes at offset in peer's store into dst (in this node's store)
    // in pieces, heartbeating between them. landed(n): the first n bytes
    // are in (for a restore that checksums behind the transfer).
    Status pull(int peer, std::uint64_t offset, std::uint8_t *dst, std::uint64_t bytes,
                const std::function<void(std::uint64_t)> &landed = {});
    // Closing on purpose: tells the watched peers, so they do not take this
    // rank for dead, and stops the heartbeat thread.
    void farewell();

    // ---- fixed after setup ----
    const std::vector<int> &partners() const { return partners_; }
    bool has_transport() const { return transport_ != nullptr; }
    const char *transport_name() const { return transport_ ? transport_->name() : "none"; }

private:
    Replicator(const JobLayout &job, store::StoreFile &store, Hooks hooks, int replica_timeout_ms)
        : job_(job), store_(store), hooks_(std::move(hooks)), replica_timeout_ms_(replica_timeout_ms) {}
    void handle_msg(const TransportMsg &m, InFlightSave &save);
    void keep_copy(const TransportMsg &m);
    void drop_msg(const TransportMsg &m, const char *why);
    void send_heartbeats(bool force);
    [[noreturn]] void peer_lost(int peer, double silent_ms, bool gone);

    const JobLayout &job_;
    store::StoreFile &store_;
    Hooks hooks_;
    int replica_timeout_ms_;
    std::unique_ptr<Transport> transport_;
    std::vector<int> partners_;
    std::vector<int> sources_;                // the ranks whose shards this rank keeps copies of
    std::vector<std::uint64_t> store_bytes_;  // every rank's node store size
    msgcheck::DropLog drops_;
    // The watched peers and when the next heartbeat over the transport is
    // due (none: peers are not watched). Silence is judged by heartbeat_,
    // which keeps its own PeerWatch.
    std::optional<PeerWatch> watch_;
    std::unique_ptr<Heartbeat> heartbeat_;
};

}  // namespace tck
