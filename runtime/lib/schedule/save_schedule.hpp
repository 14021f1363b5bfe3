// When a running job's next save is due: the state behind due(step) and
// the decision taken at each save. Pure (no MPI, no clock of its own): the
// checkpointer passes the time, and at each save the job's measurements,
// reduced over its ranks (the largest of each), so that every rank holds
// the same decision and due() needs no communication.
//
//   due(step) ... due(step) = true -> [the save] -> decide(step, job) -> due(...)
//
// Modes (--ckpt-interval, TIERCKPT_CKPT_INTERVAL):
//   steps N     due when step > 0 is a multiple of N (as `step % N == 0` always did)
//   duration D  due every round(D / step time) steps, the step time measured
//   auto        due every choose(...).steps steps (interval.hpp): the interval
//               that minimises the expected time lost to saving and to
//               recomputation after failures, from this job's measured costs
//
// In the two measured modes the first save is due one step after the
// first due() call (the first step measured): before it no cost is known.
// Each later save's decision uses the median of the last kWindow saves'
// stalls, commits and flushes as measured by then (of two, the smaller) (a pause of the machine
// in one save does not move the interval; a lasting change, such as a
// state that grew, does within kWindow - 1 saves); until a commit has been measured no commit bound
// applies (a save arriving before the previous commit is decided waits
// behind it, pending, where the store has room: see Checkpointer::save).
#pragma once

#include <cstdint>
#include <deque>
#include <limits>
#include <string>

#include "common/parse.hpp"
#include "lib/schedule/interval.hpp"

namespace tck::schedule {

// What the job measured, in seconds: each the largest over the ranks.
struct Measured {
    double step_s = 0;    // mean compute time of a step (time between due() calls, less time in save); 0: none
    double stall_s = 0;   // the save just made: what training waited for (stall + wait)
    double commit_s = 0;  // the newest commit: from its start to the last rank's copies acknowledged; 0: none yet
    double flush_s = 0;   // the newest flush to the persistent tier; 0: none yet
};

struct RunConfig {
    CkptInterval interval;          // auto, steps or duration
    double node_mtbf_s = 0;         // a node's MTBF (not positive or infinite: no failures)
    std::uint64_t nodes = 1;        // the job's nodes: job MTBF = node MTBF / nodes
    double max_overhead = 0;        // cap on the share of time saving, (0, 1); 0: none
    bool replicas = true;           // copies on other nodes: a node failure is recovered from memory
    bool persistent_tier = false;   // a persistent directory is configured
    std::uint64_t persist_every = 0;  // its flush cadence as configured; 0: chosen here (auto)
    double restart_s = 0;           // failure to relaunched, before the restore
};

struct Decision {
    std::uint64_t count = 0;        // decisions so far (0: none)
    std::uint64_t at_step = 0;      // the step of the save it followed
    std::uint64_t steps = 0;        // steps between saves from there (0: never)
    std::uint64_t next_due = 0;     // the step at which due() turns true (max: never)
    Measured in;                    // the inputs
    double job_mtbf_s = 0;
    Schedule sched;                 // auto: choose()'s answer; otherwise steps and interval only
};

class SaveSchedule {
public:
    static constexpr std::uint64_t kNever = std::numeric_limits<std::uint64_t>::max();
    // Saves whose costs are taken together (their median).
    static constexpr std::size_t kWindow = 3;

    explicit SaveSchedule(const RunConfig &c) : cfg_(c) {}

    // The application reached step (its own counter, increasing by one or
    // more per call; a step not above the previous one is not measured).
    // now_ms: a monotonic clock; in_save_ms: the total time this rank has
    // spent in save() so far (left out of the step time). True when a
    // save is due at this step.
    bool due(std::uint64_t step, double now_ms, double in_save_ms);

    // The job went back to an earlier step (a restore in this process):
    // the next due() call is a first call again (a save one step later),
    // the step it gives need not follow the previous one.
    void restart();

    // This rank's step time since the previous decision (0: none measured),
    // for the job's reduction.
    double local_step_s() const;

    // After a save at step: the next due step from the job's measurements
    // (job.stall_s this save's; commit_s and flush_s the newest, 0 while
    // none is measured). Collective in effect: every rank passes the same
    // values. The decision's inputs (Decision::in) are the medians used.
    const Decision &decide(std::uint64_t step, const Measured &job);

    const Decision &last() const { return last_; }
    const RunConfig &config() const { return cfg_; }
    // Whether due() has been called since the run began.
    bool used() const { return started_; }
    double job_mtbf_s() const;

private:
    RunConfig cfg_;
    bool started_ = false;
    std::uint64_t next_due_ = 0;
    std::uint64_t prev_step_ = 0;
    double prev_now_ms_ = 0;
    double prev_in_save_ms_ = 0;
    double sum_ms_ = 0;           // step time measured since the last decision
    std::uint64_t counted_ = 0;   // steps it covers
    double step_s_ = 0;           // the job's step time at the last decision
    std::deque<double> stalls_, commits_, flushes_;  // the last kWindow measured
    Decision last_;
};

// "auto", "steps" or "duration": the mode's name in decisions and
// tierckpt_schedule_t.
const char *mode_name(CkptInterval::Kind k);

// The line a decision prints (rank 0, and tierckpt-report schedule): the
// mode, the chosen steps and what bound them, the inputs, the expected
// overhead and lost work per failure.
std::string describe(const Decision &d, const RunConfig &c);

}  // namespace tck::schedule
