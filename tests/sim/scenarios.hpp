// The simulator's scenarios and the comparison the docs' table and the
// unit test make: the schedule's choice (`auto`) against every fixed
// interval (and flush period) of a grid, on the same seeded traces.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "schedule_sim.hpp"

namespace tck::sim {

struct Scenario {
    std::string name;
    schedule::Costs costs;
    Trace trace;
    bool persistent_tier = false;
    double step_s = 10;
};

struct Comparison {
    double auto_interval_s = 0;
    std::uint64_t auto_persist_every = 0;
    double auto_goodput = 0;
    double best_interval_s = 0;
    std::uint64_t best_persist_every = 0;
    double best_goodput = 0;
    double failures_per_run = 0;
};

// The scenarios of the docs' table (tierckpt(7), SCHEDULE).
std::vector<Scenario> scenarios();

// Mean goodput over `seeds` traces (seeds 1..seeds) of `days` of work, for
// auto and for every point of the grid: every whole-step interval from
// 1/8 to 8 times auto's (200 on a log scale where there are more), none
// shorter than a commit; with a persistent tier, flush periods 1 to 32
// whose periods cover a flush.
Comparison compare(const Scenario &s, double days, unsigned seeds);

}  // namespace tck::sim
