// What every benchmark program prints: one line per figure, against a
// reference measured in the same run (see `make bench`).
#pragma once

#include <cstdio>
#include <string>

#include "common/clock.hpp"

namespace bench {

using tck::now_ms;

inline void report(const std::string &name, double value, const char *unit, double reference) {
    std::printf("bench %s value=%.3f unit=%s reference=%.3f ratio=%.3f\n", name.c_str(), value, unit, reference,
                value / reference);
    std::fflush(stdout);
}

}  // namespace bench
