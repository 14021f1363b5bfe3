// The checkpoint interval (lib/schedule/interval.hpp): Young's and Daly's
// estimates against hand-computed values, the bounds, degenerate inputs,
// and the two-level choice against a brute-force search of the same model.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "lib/schedule/interval.hpp"

using namespace tck::schedule;

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
}

TEST_CASE("Young's and Daly's intervals, by hand", "[schedule]") {
    // sqrt(2 * 10 * 5000) = sqrt(100000)
    CHECK(young_interval(10, 5000) == Approx(316.2277660));
    // r = 10 / 10000; 316.2278 * (1 + sqrt(r)/3 + r/9) - 10
    CHECK(daly_interval(10, 5000) == Approx(309.5962358));
    // A cost of at least 2M: the interval is M.
    CHECK(daly_interval(100, 40) == 40);
    CHECK(daly_interval(80, 40) == 40);
    // Degenerate: free checkpoints are taken at once; no failures, never.
    CHECK(young_interval(0, 5000) == 0);
    CHECK(daly_interval(0, 5000) == 0);
    CHECK(std::isinf(daly_interval(10, 0)));
    CHECK(std::isinf(daly_interval(10, -1)));
    CHECK(std::isinf(young_interval(10, kInf)));
}

TEST_CASE("expected overhead, by hand", "[schedule]") {
    Costs c;
    c.stall_s = 10;
    c.commit_s = 5;
    c.restart_s = 20;
    Failures f;
    f.job_mtbf_s = 1000;
    // P = 100: 10/100 + (50 + 5 + 20) / 1000
    CHECK(expected_overhead(c, f, 90, 0) == Approx(0.175));
    // Two tiers, a fifth of failures from the persistent tier every 3rd version:
    // 10/100 + 20/300 + 0.8/1000 (50 + 5 + 20) + 0.2/1000 (150 + 5 + 40 + 60)
    c.flush_stall_s = 20;
    c.flush_s = 40;
    c.restart_persist_s = 60;
    f.persistent_tier = true;
    f.persist_fraction = 0.2;
    CHECK(expected_overhead(c, f, 90, 3) == Approx(0.1 + 20.0 / 300 + 0.06 + 0.051));
}

TEST_CASE("the schedule: Daly's optimum in whole steps, then the job's bounds", "[schedule]") {
    Costs c;
    c.stall_s = 10;
    Failures f;
    f.job_mtbf_s = 5000;
    Limits l;
    l.step_s = 1;
    // Daly: 309.6 s; of 309 and 310 steps, 309 loses less (0.063248 < 0.06325).
    Schedule s = choose(c, f, l);
    CHECK(s.steps == 309);
    CHECK(s.bound == "optimum");
    CHECK(s.optimum_s == Approx(309.5962358));
    CHECK(s.interval_s == 309);
    CHECK(s.save_overhead == Approx(10.0 / 319));
    CHECK(s.overhead == Approx(10.0 / 319 + 319.0 / 2 / 5000));
    CHECK(s.lost_per_failure_s == Approx(159.5));
    CHECK(s.persist_every == 0);

    // Steps of 7 s: 44 steps (308 s) or 45 (315 s); 44 loses less.
    l.step_s = 7;
    s = choose(c, f, l);
    CHECK(s.steps == 44);

    // A commit longer than the optimum: the next save must not wait for it.
    l.step_s = 1;
    c.commit_s = 500;
    s = choose(c, f, l);
    CHECK(s.steps == 500);
    CHECK(s.bound == "commit");
    CHECK(s.lost_per_failure_s == Approx(255 + 500));

    // An overhead cap of 1 %: a period of at least 1000 s, 990 of compute.
    c.commit_s = 0;
    l.max_overhead = 0.01;
    s = choose(c, f, l);
    CHECK(s.steps == 990);
    CHECK(s.bound == "overhead-cap");
    CHECK(s.save_overhead == Approx(0.01));
}

TEST_CASE("the schedule's degenerate inputs", "[schedule]") {
    Limits l;
    l.step_s = 2;
    Failures f;
    f.job_mtbf_s = 5000;
    // Free saves: every step.
    Costs free_save;
    Schedule s = choose(free_save, f, l);
    CHECK(s.steps == 1);
    CHECK(s.overhead == Approx(1.0 / 5000));
    // A save costing more than twice the MTBF: Daly's interval is the MTBF.
    Costs huge;
    huge.stall_s = 1e6;
    s = choose(huge, f, l);
    CHECK(s.steps == 2500);
    // No failure rate: no periodic save.
    Costs c;
    c.stall_s = 10;
    Failures none;
    s = choose(c, none, l);
    CHECK(s.steps == 0);
    CHECK(s.bound == "no-failures");
    CHECK(s.overhead == 0);
    none.job_mtbf_s = kInf;
    CHECK(choose(c, none, l).steps == 0);
    // Every failure needs the persistent tier and there is none: memory
    // saves recover nothing.
    f.persist_fraction = 1;
    CHECK(choose(c, f, l).bound == "no-failures");
}

TEST_CASE("the persistent tier: flushes keep up; two levels beat a brute-force search", "[schedule]") {
    Costs c;
    c.stall_s = 10;
    c.flush_s = 1000;
    Failures f;
    f.job_mtbf_s = 5000;
    f.persistent_tier = true;
    Limits l;
    l.step_s = 1;
    // Memory covers every failure: flush as often as a flush completes;
    // a period of 319 s, so every 4th version (1276 s >= 1000 s).
    Schedule s = choose(c, f, l);
    CHECK(s.steps == 309);
    CHECK(s.persist_every == 4);
    CHECK(s.persist_bound == "flush-time");
    // Given: kept.
    l.persist_every = 9;
    CHECK(choose(c, f, l).persist_every == 9);
    l.persist_every = 0;

    // Two levels: a fifth of failures need the persistent tier, a flush
    // costs training 60 s. The chosen (steps, k) loses no more than the
    // best of every (steps, k) the search below tries.
    c.flush_s = 100;
    c.flush_stall_s = 60;
    c.commit_s = 3;
    c.restart_s = 30;
    c.restart_persist_s = 300;
    f.persist_fraction = 0.2;
    s = choose(c, f, l);
    double best = kInf;
    for (std::uint64_t k = 1; k <= 60; ++k) {
        for (std::uint64_t n = 1; n <= 3000; ++n) {
            if (static_cast<double>(k) * (static_cast<double>(n) + c.stall_s) < c.flush_s) continue;
            best = std::min(best, expected_overhead(c, f, static_cast<double>(n), k));
        }
    }
    CHECK(s.persist_every > 1);
    CHECK(s.overhead <= best * 1.001);
    CHECK(s.overhead == Approx(expected_overhead(c, f, s.interval_s, s.persist_every)));
    CHECK(s.lost_per_persist_failure_s ==
          Approx(static_cast<double>(s.persist_every) * (s.interval_s + 10) / 2 + 3 + 100 + 300));
}
