// A deterministic, seeded simulator of a training job under failures, to
// check the schedule (lib/schedule/interval.hpp) against what actually
// happens: the job computes, saves every `interval` (training waits
// `stall`), a version commits `commit` later, every k-th committed
// version is flushed to the persistent tier (done `flush` later); a failure
// throws away the work since the newest committed version (or, for the
// failures memory cannot recover from, since the newest flushed one) and
// costs a restart. Failure times come from a seeded generator: exponential
// or Weibull inter-arrival times with the given mean (the job's MTBF).
// Goodput: the work done over the wall time it took.
#pragma once

#include <cstdint>
#include <string>

#include "lib/schedule/interval.hpp"

namespace tck::sim {

struct Trace {
    double mtbf_s = 0;        // mean time between the job's failures
    double weibull_shape = 0; // 0: exponential; else Weibull with this shape (< 1: failures come in bursts)
    double persist_fraction = 0;  // share of failures memory cannot recover from
    std::uint64_t seed = 1;
};

struct Result {
    double goodput = 0;       // work / wall time
    std::uint64_t failures = 0;
    std::uint64_t saves = 0;
};

// Simulates `work_s` seconds of training (whole steps of c-independent
// length; the interval is taken as given, in seconds of compute between
// saves) with flushes every `persist_every` committed versions (0: none).
Result run(const schedule::Costs &c, const Trace &t, double work_s, double interval_s, std::uint64_t persist_every);

}  // namespace tck::sim
