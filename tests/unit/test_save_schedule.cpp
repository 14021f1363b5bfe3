// A running job's save schedule (lib/schedule/save_schedule.hpp): when
// due() turns true in each mode, the step time it measures, and the
// decisions against hand-computed values, degenerate inputs included.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "lib/schedule/save_schedule.hpp"

using namespace tck;
using namespace tck::schedule;

namespace {

RunConfig auto_config(double node_mtbf_s, std::uint64_t nodes) {
    RunConfig c;
    c.node_mtbf_s = node_mtbf_s;
    c.nodes = nodes;
    c.restart_s = 60;
    return c;
}

// Starts a schedule and measures one step of step_s: the first save is due.
void first_step(SaveSchedule &s, double step_s) {
    REQUIRE_FALSE(s.due(10, 1000, 0));
    REQUIRE(s.due(11, 1000 + step_s * 1000, 0));
}

}  // namespace

TEST_CASE("a number of steps: due at its multiples, as step % N == 0", "[save-schedule]") {
    RunConfig c;
    c.interval.kind = CkptInterval::Kind::steps;
    c.interval.steps = 5;
    SaveSchedule s(c);
    CHECK_FALSE(s.due(0, 0, 0));
    CHECK_FALSE(s.due(4, 0, 0));
    CHECK(s.due(5, 0, 0));
    CHECK_FALSE(s.due(6, 0, 0));
    const Decision &d = s.decide(5, {});
    CHECK(d.steps == 5);
    CHECK(d.next_due == 10);
    CHECK(s.due(10, 0, 0));
    CHECK(d.sched.bound == "given");
}

TEST_CASE("the step time leaves the time spent in save out", "[save-schedule]") {
    SaveSchedule s(auto_config(3600, 3));
    CHECK_FALSE(s.due(1, 0, 0));
    CHECK(s.local_step_s() == 0);
    // 1000 ms between the calls, 400 of them inside save.
    CHECK(s.due(2, 1000, 400));
    CHECK(s.local_step_s() == Approx(0.6));
    // Two steps at once: 1.2 s over 2 steps.
    (void)s.due(4, 2200, 400);
    CHECK(s.local_step_s() == Approx((0.6 + 1.2) / 3));
    // A decision starts a new measurement.
    (void)s.decide(4, {0.6, 0.1, 0, 0});
    CHECK(s.local_step_s() == 0);
}

TEST_CASE("a duration: its measured steps, at least one", "[save-schedule]") {
    RunConfig c;
    c.interval.kind = CkptInterval::Kind::duration;
    c.interval.seconds = 10;
    SaveSchedule s(c);
    first_step(s, 0.5);
    const Decision &d = s.decide(11, {0.5, 0.2, 1.0, 0});
    CHECK(d.steps == 20);  // 10 s / 0.5 s
    CHECK(d.next_due == 31);
    CHECK_FALSE(s.due(30, 0, 0));
    CHECK(s.due(31, 0, 0));
    // Steps longer than the duration: every step.
    CHECK(s.decide(31, {25, 0.2, 1.0, 0}).steps == 1);
}

TEST_CASE("auto: Daly's interval from the measured stall and the job's MTBF", "[save-schedule]") {
    // Node MTBF 1 h on 3 nodes: the job's is 1200 s. Stall 0.6 s:
    // sqrt(2 * 0.6 * 1200) * (1 + sqrt(r)/3 + r/9) - 0.6, r = 0.6 / 2400,
    // = 37.548 s, of 0.5 s steps: 75 or 76.
    SaveSchedule s(auto_config(3600, 3));
    first_step(s, 0.5);
    const Decision &d = s.decide(11, {0.5, 0.6, 2.0, 0});
    CHECK(d.job_mtbf_s == Approx(1200));
    CHECK(d.sched.optimum_s == Approx(37.548386).epsilon(1e-6));
    CHECK(d.sched.bound == "optimum");
    CHECK((d.steps == 75 || d.steps == 76));
    CHECK(d.next_due == 11 + d.steps);
    CHECK(d.sched.interval_s == Approx(0.5 * static_cast<double>(d.steps)));
    CHECK_FALSE(s.due(11 + d.steps - 1, 0, 0));
    CHECK(s.due(11 + d.steps, 0, 0));
    // Expected loss per failure: half a period, the commit, the restart.
    CHECK(d.sched.lost_per_failure_s == Approx((d.sched.interval_s + 0.6) / 2 + 2.0 + 60));
    // A larger state costs more: the interval grows as its square root,
    // once the window's median is the new cost (the second save of it).
    CHECK(s.decide(100, {0.5, 2.4, 2.0, 0}).in.stall_s == Approx(0.6));  // of two, the smaller
    const Decision &bigger = s.decide(200, {0.5, 2.4, 2.0, 0});
    CHECK(bigger.in.stall_s == 2.4);
    CHECK(bigger.sched.optimum_s == Approx(std::sqrt(2 * 2.4 * 1200) * (1 + std::sqrt(0.001) / 3 + 0.001 / 9) - 2.4));
    CHECK(bigger.steps > 140);
}

TEST_CASE("auto: never shorter than a commit, nor above the overhead cap", "[save-schedule]") {
    SaveSchedule s(auto_config(3600, 3));
    first_step(s, 0.5);
    // A commit of 50 s: the next save must not arrive before it ends.
    const Decision &d = s.decide(11, {0.5, 0.6, 50, 0});
    CHECK(d.sched.bound == "commit");
    CHECK(d.steps == 100);
    // At most 1 %: 0.6 / 0.01 - 0.6 = 59.4 s, 118.8 steps: 119.
    RunConfig capped = auto_config(3600, 3);
    capped.max_overhead = 0.01;
    SaveSchedule t(capped);
    first_step(t, 0.5);
    const Decision &e = t.decide(11, {0.5, 0.6, 2.0, 0});
    CHECK(e.sched.bound == "overhead-cap");
    CHECK(e.steps == 119);
    CHECK(e.sched.save_overhead <= 0.01);
}

TEST_CASE("auto: degenerate inputs", "[save-schedule]") {
    SECTION("free saves: every step") {
        SaveSchedule s(auto_config(3600, 3));
        first_step(s, 0.5);
        const Decision &d = s.decide(11, {0.5, 0, 0, 0});
        CHECK(d.steps == 1);
        CHECK(d.sched.optimum_s == 0);  // Daly: a free save is taken at once, rounded up to a step
    }
    SECTION("a cost above twice the MTBF: Daly's M") {
        SaveSchedule s(auto_config(3600, 3));
        first_step(s, 0.5);
        const Decision &d = s.decide(11, {0.5, 1e6, 0, 0});
        CHECK(d.sched.optimum_s == 1200);
        CHECK((d.steps == 2400 || d.steps == 2401));
    }
    SECTION("no failures (an infinite MTBF): never again") {
        SaveSchedule s(auto_config(std::numeric_limits<double>::infinity(), 3));
        first_step(s, 0.5);
        const Decision &d = s.decide(11, {0.5, 0.6, 1, 0});
        CHECK(d.steps == 0);
        CHECK(d.sched.bound == "no-failures");
        CHECK(d.next_due == SaveSchedule::kNever);
        CHECK_FALSE(s.due(1000000, 0, 0));
        CHECK(describe(d, s.config()).find("next=never") != std::string::npos);
    }
    SECTION("no step measured (saves made without due): one step") {
        SaveSchedule s(auto_config(3600, 3));
        const Decision &d = s.decide(5, {0, 0.6, 1, 0});
        CHECK(d.steps == 1);
        CHECK(d.sched.bound == "no-step-time");
    }
}

TEST_CASE("a decision's line names its inputs and outputs", "[save-schedule]") {
    SaveSchedule s(auto_config(3600, 3));
    first_step(s, 0.5);
    const Decision &d = s.decide(11, {0.5, 0.6, 2.0, 0});
    const std::string line = describe(d, s.config());
    CHECK(line.rfind("mode=auto step=11 steps=", 0) == 0);
    CHECK(line.find("bound=optimum") != std::string::npos);
    CHECK(line.find("stall_s=0.6 ") != std::string::npos);
    CHECK(line.find("job_mtbf_s=1200 ") != std::string::npos);
}

TEST_CASE("a restore in the same process starts due() over", "[save-schedule]") {
    SaveSchedule s(auto_config(3600, 3));
    first_step(s, 0.5);
    (void)s.decide(11, {0.5, 0.6, 2.0, 0});
    (void)s.due(40, 20000, 0);
    s.restart();  // the job went back to step 11
    CHECK_FALSE(s.due(12, 30000, 0));
    CHECK(s.due(13, 30500, 0));  // one step measured: due, as at a start
    CHECK(s.local_step_s() == Approx(0.5));
}

TEST_CASE("extreme inputs stay defined: at most 10^18 steps, never past the last step", "[save-schedule]") {
    SaveSchedule s(auto_config(1e300, 1));
    first_step(s, 1e-9);
    const Decision &d = s.decide(11, {1e-9, 1, 0, 0});
    CHECK(d.steps == 1000000000000000000ull);
    CHECK(d.next_due == 11 + d.steps);
    const Decision &late = s.decide(SaveSchedule::kNever - 5, {1e-9, 1, 0, 0});
    CHECK(late.next_due == SaveSchedule::kNever);
    RunConfig c;
    c.interval.kind = CkptInterval::Kind::steps;
    c.interval.steps = 1000;
    SaveSchedule t(c);
    CHECK(t.decide(SaveSchedule::kNever - 10, {}).next_due == SaveSchedule::kNever);
}

TEST_CASE("the flush cadence: given, or the fewest saves whose periods cover a flush", "[save-schedule]") {
    RunConfig c;
    c.interval.kind = CkptInterval::Kind::duration;
    c.interval.seconds = 10;
    c.persistent_tier = true;
    SaveSchedule s(c);  // persist_every 0: chosen
    first_step(s, 0.5);
    // Period 20 steps * 0.5 s + 0.5 s stall = 10.5 s; a 30 s flush: 3 periods.
    const Decision &d = s.decide(11, {0.5, 0.5, 1.0, 30});
    CHECK(d.sched.persist_every == 3);
    CHECK(d.sched.persist_bound == "flush-time");
    CHECK(describe(d, s.config()).find("persist_every=3 persist_bound=flush-time") != std::string::npos);
    // No flush measured yet: every version.
    SaveSchedule fresh(c);
    first_step(fresh, 0.5);
    CHECK(fresh.decide(11, {0.5, 0.5, 1.0, 0}).sched.persist_every == 1);
    c.persist_every = 10;
    SaveSchedule given(c);
    first_step(given, 0.5);
    CHECK(given.decide(11, {0.5, 0.5, 1.0, 30}).sched.persist_every == 10);
    CHECK(given.last().sched.persist_bound == "given");
    // Auto without replicas: every failure needs the persistent tier; the
    // two-level model chooses (tierckpt(7)).
    RunConfig a = auto_config(3600, 3);
    a.persistent_tier = true;
    a.replicas = false;
    SaveSchedule two(a);
    first_step(two, 0.5);
    const Decision &t = two.decide(11, {0.5, 0.6, 2.0, 5});
    CHECK(t.sched.persist_every >= 1);
    CHECK((t.sched.persist_bound == "optimum" || t.sched.persist_bound == "flush-time"));
}

TEST_CASE("one slow save (a pause of the machine) does not move the interval", "[save-schedule]") {
    SaveSchedule s(auto_config(90, 3));
    first_step(s, 0.05);
    const std::uint64_t calm = s.decide(11, {0.05, 0.04, 0.3, 0}).steps;
    CHECK(s.decide(50, {0.05, 2.8, 0.3, 0}).in.stall_s == 0.04);  // of two saves, the smaller
    const Decision &d = s.decide(90, {0.05, 0.05, 0.3, 0});
    CHECK(d.in.stall_s == 0.05);  // the median of 0.04, 2.8, 0.05
    CHECK(d.steps <= calm + calm / 4);
    // A commit is counted once: the same newest commit again is not a new one.
    const Decision &e = s.decide(130, {0.05, 0.05, 0.3, 0});
    CHECK(e.in.commit_s == 0.3);
    const Decision &f = s.decide(170, {0.05, 0.05, 3.0, 0});  // one slow commit
    CHECK(f.in.commit_s == 0.3);  // of 0.3 and 3.0, the smaller
    const Decision &g = s.decide(210, {0.05, 0.05, 0.31, 0});
    CHECK(g.in.commit_s == 0.31);  // the median of 0.3, 3.0, 0.31
}
