// The one small interface every RDMA backend implements (one file each:
// ucx.cpp for InfiniBand/RoCE, ofi.cpp for EFA). What replication needs:
// small control messages, and one-sided reads of a peer's registered node
// store (receiver-driven: the partner pulls a shard when told it is ready,
// because RDMA read is fast on every transport here while emulated puts
// are not; see HACKING.md).
//
// Setup runs on the application's thread inside the collective open; after
// that only the checkpointer's worker thread touches the transport.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.hpp"

namespace tck {

// A control message between ranks' worker threads.
struct TransportMsg {
    // heartbeat: "still here" (see peer_watch.hpp); bye: "closing, stop
    // watching me".
    enum Type : std::uint32_t { ready = 1, done = 2, heartbeat = 3, bye = 4 };
    std::uint32_t type;
    std::uint32_t from;      // sender's rank
    std::uint64_t version;
    std::uint64_t offset;    // ready: where the shard lies in the sender's store
    std::uint64_t bytes;
    std::uint32_t crc;
    std::uint32_t nregions;
    std::uint32_t ok;        // done: 1 when the replica landed and verified
    std::uint32_t owner;     // the rank whose shard it is
    std::uint64_t token;     // the job's token (set_peers): the backend stamps it on send and drops
                             // a message without it on receipt
};

// Received control messages waiting for poll(): the queue every backend
// fills from its completion callbacks.
class Inbox {
public:
    void push(const TransportMsg &m) { q_.push_back(m); }
    bool empty() const { return q_.empty(); }
    bool pop(TransportMsg &m) {
        if (q_.empty()) return false;
        m = q_.front();
        q_.pop_front();
        return true;
    }

private:
    std::deque<TransportMsg> q_;
};

class Transport {
public:
    virtual ~Transport() = default;
    virtual const char *name() const = 0;

    // Registers [base, base+len) (the node store mapping) for remote reads
    // and returns what peers need to reach it and us.
    virtual Result<std::vector<std::uint8_t>> local_blob(void *base, std::size_t len) = 0;
    // Every rank's blob, indexed by rank (ours included), and the job's
    // token: a random 64-bit secret every rank of the job holds (rank 0
    // draws it, MPI hands it to the others). Every message and request the
    // backend sends carries it; whatever arrives without it (anything that
    // merely reached this endpoint: another user's process on the node or
    // the network) is dropped before any field is used. UCX cannot say who
    // sent a message, so this is what keeps outsiders out there.
    virtual Status set_peers(const std::vector<std::vector<std::uint8_t>> &blobs, int self,
                             std::uint64_t job_token) = 0;

    // Worker thread only from here on.
    virtual Status send(int peer, const TransportMsg &m) = 0;
    // How much of a get has landed: the first n bytes (called as that
    // prefix grows, from the calling thread, maybe not at all before the
    // get returns).
    using Landed = std::function<void(std::uint64_t n)>;
    // Reads len bytes at offset in peer's store into local (inside our own
    // registered store); gives up after timeout_ms. The peer's worker must
    // be polling (it serves the read on emulated transports).
    virtual Status get(int peer, std::uint64_t offset, void *local, std::size_t len, int timeout_ms,
                       const Landed &landed) = 0;
    // The bytes one get() should move: large enough to keep the link busy,
    // small enough that heartbeats go out between calls.
    virtual std::size_t pull_piece() const { return 4u << 20; }
    // Delivers received messages; false when none is queued.
    virtual bool poll(TransportMsg &m) = 0;
    // Sleeps until the transport has work, `wake_fd` is readable, or
    // timeout_ms pass. Never spins.
    virtual void wait(int wake_fd, int timeout_ms) = 0;
};

// Each backend's factory: construct it and run its init().
template <typename T>
Result<std::unique_ptr<Transport>> make_initialized() {
    auto t = std::make_unique<T>();
    Status st = t->init();
    if (!st) return st;
    return std::unique_ptr<Transport>(std::move(t));
}

// kind: "ucx", "ofi" or "auto" (the first that initialises).
Result<std::unique_ptr<Transport>> make_transport(const std::string &kind);
const char *transports_built();

}  // namespace tck
