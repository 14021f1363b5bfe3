// Liveness that no work can hold up. Each rank that replicates runs one
// small thread of its own that, every interval, sends a 32-byte UDP datagram
// to each watched peer (the ranks it copies to and the ranks that copy to
// it) and reads theirs. A watched peer silent for longer than the timeout is
// taken for dead: the thread calls `lost`, which ends the process with
// TIERCKPT_EXIT_PEER_LOST (replicator.cpp).
//
// Why a thread and a socket of its own: the worker thread, which owns the
// transport, spends seconds at a time in a checksum, a pull, or waiting for a
// flush to free a slot; heartbeats sent from between those pieces of work
// came late under load, and a busy node was declared dead although it lived.
// This thread does nothing else, takes no lock that other work holds for
// long (only `mu_`, held for bookkeeping), and sleeps in poll(). The
// transport's own heartbeats and replication messages still count as signs
// of life (heard()), so a network that drops the datagrams only loses the
// faster path.
//
// A process that ends without closing (a crash, a kill, a node that came
// back empty) leaves its socket closed, and its node answers the next
// heartbeat with ICMP "port unreachable" (IP_RECVERR): counted only from an
// address the peer's own heartbeats came from (an address published by
// every node alike, such as a container bridge's, would answer for this
// node instead), and taken for death after a short grace (PeerWatch::
// unreachable), long before the timeout. A node that vanishes from the
// network (power, a hang, a cut link) answers nothing: the timeout finds it.
// A process that exits with status 0 (exit(0), the end of main) without
// closing its checkpointer says bye first (an exit hook), so that its peers,
// often still finishing their last step, do not take it for dead; one that
// exits with another status is a failure, and says nothing. Only an answer
// that quotes one of this rank's heartbeats and comes from the address it
// was sent to counts (not a router's or a firewall's). A child forked
// without exec keeps the socket open: a rank that dies before such a child
// is found by the timeout.
//
// Addresses: each rank publishes its node's IPv4 addresses (up interfaces;
// loopback only when there is nothing else) and its socket's port; a
// heartbeat goes to every address of the peer. Datagrams carry the job's
// token (transport.hpp): one without it, from a rank that is not watched,
// or of the wrong size is dropped, so another user's process can neither
// forge a peer's heartbeat nor make this thread do more than read and drop.
//
// Threads: open() and local_blob() on the application's thread before the
// exchange; start() starts the thread; heard()/left() from any thread;
// stop() from any thread but this one's.
#pragma once

#include <netinet/in.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/status.hpp"
#include "common/unique_fd.hpp"
#include "lib/replication/peer_watch.hpp"

namespace tck {

class Heartbeat {
public:
    // Called on the heartbeat thread when a watched peer has been silent
    // for longer than the timeout, or its port answered "unreachable" and
    // the grace passed (silent_ms: how long it was silent; gone: its port
    // was unreachable). Should not return (the runtime ends the process); if
    // it does, that peer is no longer watched.
    using LostFn = std::function<void(int peer, double silent_ms, bool gone)>;

    // The most addresses one rank publishes (the rest are ignored).
    static constexpr std::size_t kMaxAddrs = 8;

    // Opens the socket: UDP, an ephemeral port on every address.
    static Result<std::unique_ptr<Heartbeat>> open();
    ~Heartbeat();
    Heartbeat(const Heartbeat &) = delete;
    Heartbeat &operator=(const Heartbeat &) = delete;

    // This rank's addresses and port, for the other ranks (allgather it).
    std::vector<std::uint8_t> local_blob() const;

    // Starts the thread. blobs: every rank's local_blob(), by rank (a
    // malformed one leaves that rank unreachable: it is still watched, over
    // the transport). watched: the ranks to watch; timeout_ms > 0; token:
    // the job's secret.
    Status start(int self, const std::vector<std::vector<std::uint8_t>> &blobs, std::vector<int> watched,
                 int timeout_ms, std::uint64_t token, LostFn lost);

    // A sign of life from `peer` that came another way (the transport).
    void heard(int peer);
    // `peer` closed on purpose: stop watching it.
    void left(int peer);
    // Stops the thread; say_goodbye: tell the watched peers first (a close on
    // purpose), so that they stop watching this rank.
    void stop(bool say_goodbye = true);

    int timeout_ms() const { return timeout_ms_; }
    // The longest silence seen so far from any watched peer, in ms (how
    // close the timeout came to firing: logged at close).
    double longest_silence_ms() const;

    // The process is exiting (the exit hook): say bye to the watched peers
    // and judge no one any more. Any thread; does not wait for the thread.
    // Nothing in a forked child (the rank lives on in its parent).
    void exiting();

private:
    Heartbeat() = default;
    void loop();
    void send_all(std::uint16_t type);
    void drain();
    void drain_errors(double now);
    void say_bye();  // kByeCopies goodbye datagrams
    int watched_index(int peer) const;

    UniqueFd fd_;
    UniqueFd wake_fd_;
    std::uint16_t port_ = 0;
    std::atomic<std::uint64_t> seq_{0};
    pid_t pid_ = 0;  // the process that started the thread
    int self_ = -1;
    std::uint64_t token_ = 0;
    int timeout_ms_ = 0;
    LostFn lost_;
    std::vector<std::vector<sockaddr_in>> addrs_;  // by watched index
    // The addresses each watched peer's heartbeats came from (network
    // order; the thread's alone): "unreachable" counts only from these.
    std::vector<std::vector<std::uint32_t>> proven_;

    mutable std::mutex mu_;  // guards watch_ and longest_
    std::unique_ptr<PeerWatch> watch_;
    double longest_ = 0;

    std::atomic<bool> stop_{false};
    std::thread thread_;
};

}  // namespace tck
