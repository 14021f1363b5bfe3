// Noticing a dead peer without waiting for Slurm. Ranks that replicate to
// each other exchange small heartbeats (heartbeat.hpp: a thread of their
// own; the transport's messages count too); a watched peer that says nothing (no heartbeat, no replication
// message) for longer than the timeout is taken for dead, and the process
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
    // True when heartbeats should go out now (then not again for an
    // interval).
    bool heartbeat_due(double now);

    struct Silence {
        int peer;
        double silent_ms;
    };
    // The watched peer silent the longest, when that is over the timeout.
    std::optional<Silence> silent(double now) const;

private:
    std::vector<int> peers_;
    std::vector<double> last_heard_;
    std::vector<bool> left_;
    int timeout_ms_;
    double last_beat_ = -1e300;
};

}  // namespace tck
