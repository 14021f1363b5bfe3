// The one monotonic clock for durations (stalls, timeouts, heartbeats).
#pragma once

#include <chrono>

namespace tck {

inline double now_ms() {
    using namespace std::chrono;
    return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

inline double now_s() { return now_ms() / 1000.0; }

// Splits elapsed time into parts: lap(part) adds to part the milliseconds
// since the previous lap (or since construction).
class LapTimer {
public:
    void lap(double &part) {
        const double now = now_ms();
        part += now - t_;
        t_ = now;
    }

private:
    double t_ = now_ms();
};

}  // namespace tck
