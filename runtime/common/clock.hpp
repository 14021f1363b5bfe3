// The one monotonic clock for durations (stalls, timeouts, heartbeats).
#pragma once

#include <chrono>

namespace tck {

inline double now_ms() {
    using namespace std::chrono;
    return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

inline double now_s() { return now_ms() / 1000.0; }

}  // namespace tck
