// Noticing a dead peer without waiting for Slurm. Ranks that replicate to
// each other exchange small heartbeats (heartbeat.hpp: a thread of their
// own; the transport's messages count too); a watched peer that says nothing (no heartbeat, no replication
// message) for longer than the timeout is taken for dead, and so is one
// whose node answers that nothing listens on its heartbeat port any more
// (its process ended without closing: crashed, killed, or its node came back
// empty) and that stays silent for a short grace after that answer; the process
// ends with TIERCKPT_EXIT_PEER_LOST so that `tierckpt run` (or the job
// script) relaunches the step at once. Slurm itself notices a dead node only
// after SlurmdTimeout (300 s by default) and until then a step blocked in
// MPI waits for it.
//
// Pure bookkeeping, times passed in, so it is unit-tested without threads.
#pragma once

#include <optional>
#include <vector>

namespace tck {

class PeerWatch {
public:
    // peers: the ranks to watch (each at most once). now: when watching
    // starts, in ms. timeout_ms > 0.
    PeerWatch(std::vector<int> peers, double now, int timeout_ms);

    const std::vector<int> &peers() const { return peers_; }
    int timeout_ms() const { return timeout_ms_; }
    // How often to send heartbeats: a tenth of the timeout (so nine in a
    // row may be lost or late), at least 50 ms apart, at most 500 ms.
    int interval_ms() const;

    // Any message from `peer` (ignored when it is not watched). Returns the
    // silence it ends, in ms (0 for a stranger or an older message).
    double heard(int peer, double now);
    // `peer` closed its checkpointer on purpose: stop watching it.
    void left(int peer);
    // The watcher itself was not running for `ms` (it woke that much later
    // than it asked to): that time does not count as the peers' silence.
    // On this machine kind the whole virtual machine stops now and then for
    // up to about 3 s; every process, the peers' included, stops with it,
    // and without this every rank would take every other for dead. No
    // peer's last sign of life moves past `now`.
    void paused(double ms, double now);
    // `peer`'s node answered a heartbeat with ICMP "port unreachable" from
    // an address the peer's own heartbeats came from: its socket is closed,
    // so its process is gone (a live process holds the socket until it
    // closes its checkpointer, which says bye first). Taken for dead once
    // gone_grace_ms() more pass without a sign of life; a sign of life
    // clears it. The first answer counts, later ones do not move it.
    void unreachable(int peer, double now);
    // The grace after "unreachable": 1 s (the goodbye of a rank that closed
    // on purpose arrives within it even over a busy worker), at most the
    // timeout.
    int gone_grace_ms() const;
    // True when heartbeats should go out now (then not again for an
    // interval).
    bool heartbeat_due(double now);

    struct Silence {
        int peer;
        double silent_ms;
        bool gone;  // its node answered that its port is closed, and the grace passed
    };
    // The watched peer silent the longest among those over the timeout or
    // past the grace after "unreachable"; nullopt when there is none.
    std::optional<Silence> silent(double now) const;

private:
    std::vector<int> peers_;
    std::vector<double> last_heard_;
    std::vector<bool> left_;
    std::vector<double> gone_since_;  // when "unreachable" came; < 0: not
    int timeout_ms_;
    double last_beat_ = -1e300;
};

}  // namespace tck
