// When to checkpoint: the interval between saves that minimises the
// expected time a job loses to saving and to recomputing after failures,
// for the memory tier alone or for memory + persistent tier. Pure
// arithmetic (no MPI, no clock): the runtime feeds it the costs it
// measures, `tierckpt plan` the costs it estimates; both print its inputs
// and what it chose. tierckpt(7), SCHEDULE, states the model.
//
// All times are in seconds. A failure rate is given as a mean time between
// failures (MTBF) of the whole job: a node MTBF divided by the job's node
// count (failures independent, exponentially distributed).
#pragma once

#include <cstdint>
#include <string>

namespace tck::schedule {

// Young's first-order optimum compute time between checkpoints,
// sqrt(2 * cost * mtbf) (J. W. Young, "A first order approximation to the
// optimum checkpoint interval", CACM 17(9), 1974). cost: what the
// application waits for per checkpoint; mtbf: the job's. 0 when cost is 0;
// +infinity when mtbf is not positive or infinite (no failures).
double young_interval(double cost_s, double mtbf_s);

// Daly's higher-order estimate (J. T. Daly, "A higher order estimate of the
// optimum checkpoint interval for restart dumps", FGCS 22(3), 2006):
//   sqrt(2 c M) * (1 + sqrt(c / 2M) / 3 + (c / 2M) / 9) - c   for c < 2M,
//   M                                                         otherwise.
// Same degenerate cases as young_interval.
double daly_interval(double cost_s, double mtbf_s);

// What one save costs this job, per tier.
struct Costs {
    double stall_s = 0;          // what training waits for per save (the stage copy)
    double commit_s = 0;         // from a save's return to its commit (checksum, replicas, vote)
    double flush_s = 0;          // writing one committed version to the persistent tier (background)
    double flush_stall_s = 0;    // what training waits for per flush (0: it runs in the background)
    double restart_s = 0;        // failure to training again, restoring from memory (detect, relaunch, restore)
    double restart_persist_s = 0;  // the same, restoring from the persistent tier
};

struct Failures {
    double job_mtbf_s = 0;         // the job's MTBF; not positive or infinite: no failures
    double persist_fraction = 0;   // share of failures memory cannot recover from, [0, 1]
    bool persistent_tier = false;  // a persistent directory is configured
};

struct Limits {
    double step_s = 0;          // one training step (> 0): intervals are whole steps
    double max_overhead = 0;    // cap on the share of time spent saving, (0, 1); 0: none
    std::uint64_t persist_every = 0;  // flush every Nth committed version as given; 0: choose
};

struct Schedule {
    std::uint64_t steps = 0;          // steps of compute between saves (0: never; no failures expected)
    double interval_s = 0;            // steps * step_s
    double optimum_s = 0;             // the unbounded optimum the steps were rounded from
    std::string bound;                // what decided steps: optimum, commit, overhead-cap, one-step, no-failures
    std::uint64_t persist_every = 0;  // flush every Nth committed version (0: no persistent tier)
    std::string persist_bound;        // optimum, flush-time, given, none
    double save_overhead = 0;         // share of time training waits for saves and flushes
    double overhead = 0;              // expected share of time lost: saving, recomputation, restarts
    double lost_per_failure_s = 0;    // expected time lost per failure recovered from memory
    double lost_per_persist_failure_s = 0;  // per failure that needs the persistent tier
};

// The expected share of time lost (first order, failures landing uniformly
// in a period P = interval + stall):
//   stall/P + flush_stall/(kP)
//   + (1 - f)/M * (P/2 + commit + restart)
//   + f/M * (kP/2 + commit + flush + restart_persist)
// with k = persist_every, f = persist_fraction, M = job_mtbf. Without a
// persistent tier, a failure memory cannot recover from restarts the job
// from its beginning and is left out (it is the same for every interval).
double expected_overhead(const Costs &c, const Failures &f, double interval_s, std::uint64_t persist_every);

// The smallest k (at least 1, at most 10^18) whose k periods cover a
// flush, so that flushes keep up with saves. period_s > 0.
std::uint64_t persist_covering(double flush_s, double period_s);

// The schedule: the interval from Daly's estimate for the memory tier
// alone (f = 0 or no persistent tier), or, with a persistent tier and
// f > 0, from the first-order two-level optimum (the waste above minimised
// over P for each k, P = sqrt(2 (stall + flush_stall/k) / ((1-f)/M + k f/M)),
// and over k; the two-level form of Young's derivation, as in the
// multi-level models of Moody et al., SC10). Then bounded by what the job
// can do: whole steps, at least one; a period no shorter than a commit
// (a save never waits for the previous one); the overhead cap; k periods
// no shorter than a flush. Of the two whole-step neighbours of the
// optimum, the one with the smaller expected overhead.
// Precondition: limits.step_s > 0; costs non-negative.
Schedule choose(const Costs &c, const Failures &f, const Limits &l);

}  // namespace tck::schedule
