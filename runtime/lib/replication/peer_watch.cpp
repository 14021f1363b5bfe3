#include "peer_watch.hpp"

#include <algorithm>

namespace tck {

PeerWatch::PeerWatch(std::vector<int> peers, double now, int timeout_ms)
    : peers_(std::move(peers)), last_heard_(peers_.size(), now), left_(peers_.size(), false),
      gone_since_(peers_.size(), -1.0),
      timeout_ms_(timeout_ms) {}

int PeerWatch::interval_ms() const { return std::max(50, std::min(500, timeout_ms_ / 10)); }

double PeerWatch::heard(int peer, double now) {
    double gap = 0;
    for (std::size_t i = 0; i < peers_.size(); ++i) {
        if (peers_[i] != peer) continue;
        gap = std::max(gap, now - last_heard_[i]);
        // Any sign of life clears an answer (a message the worker read late
        // included: the next heartbeat draws a new answer within an interval).
        gone_since_[i] = -1.0;
        last_heard_[i] = std::max(last_heard_[i], now);
    }
    return gap;
}

void PeerWatch::unreachable(int peer, double now) {
    for (std::size_t i = 0; i < peers_.size(); ++i) {
        if (peers_[i] == peer && gone_since_[i] < 0) gone_since_[i] = now;
    }
}

int PeerWatch::gone_grace_ms() const { return std::min(1000, timeout_ms_); }

void PeerWatch::left(int peer) {
    for (std::size_t i = 0; i < peers_.size(); ++i) {
        if (peers_[i] == peer) left_[i] = true;
    }
}

void PeerWatch::paused(double ms, double now) {
    if (!(ms > 0)) return;
    for (double &t : last_heard_) t = std::max(t, std::min(t + ms, now));
    for (double &t : gone_since_) {
        if (t >= 0) t = std::max(t, std::min(t + ms, now));
    }
}

bool PeerWatch::heartbeat_due(double now) {
    if (now - last_beat_ < interval_ms()) return false;
    last_beat_ = now;
    return true;
}

std::optional<PeerWatch::Silence> PeerWatch::silent(double now) const {
    std::optional<Silence> worst;
    for (std::size_t i = 0; i < peers_.size(); ++i) {
        if (left_[i]) continue;
        const double quiet = now - last_heard_[i];
        const bool gone = gone_since_[i] >= 0 && now - gone_since_[i] >= gone_grace_ms();
        if ((quiet > timeout_ms_ || gone) && (!worst || quiet > worst->silent_ms)) {
            worst = Silence{peers_[i], quiet, gone};
        }
    }
    return worst;
}

}  // namespace tck
