// The schedule against the simulator (tests/sim): on seeded failure
// traces, the interval the schedule chooses keeps at least 99 % of the
// goodput of the best fixed interval of a grid, in every scenario of the
// docs' table; and the simulator itself, on cases worked by hand.
#include <catch2/catch.hpp>

#include "tests/sim/scenarios.hpp"

using namespace tck;

TEST_CASE("the simulator, by hand", "[schedule-sim]") {
    schedule::Costs c;
    c.stall_s = 10;
    sim::Trace none;  // no failures
    // 1000 s of work, a save every 100 s of compute: 9 saves (none after
    // the last piece), 90 s of stall.
    sim::Result r = sim::run(c, none, 1000, 100, 0);
    CHECK(r.saves == 9);
    CHECK(r.failures == 0);
    CHECK(r.goodput == Approx(1000.0 / 1090));
    // Exponential failures with a 1000 s mean over 10^6 s of work: about
    // one failure per 1000 s of wall time.
    sim::Trace t;
    t.mtbf_s = 1000;
    c.restart_s = 50;
    r = sim::run(c, t, 1e6, 100, 0);
    double wall = 1e6 / r.goodput;
    CHECK(static_cast<double>(r.failures) == Approx(wall / 1000).epsilon(0.05));
    // The first-order model's expected loss is close to what happens.
    schedule::Failures f;
    f.job_mtbf_s = 1000;
    CHECK(1 - r.goodput == Approx(schedule::expected_overhead(c, f, 100, 0)).epsilon(0.15));
}

TEST_CASE("auto keeps 99 % of the best fixed interval's goodput in every scenario", "[schedule-sim]") {
    for (const auto &s : sim::scenarios()) {
        auto c = sim::compare(s, 20, 4);
        INFO(s.name << ": auto " << c.auto_interval_s << " s (k=" << c.auto_persist_every << ") " << c.auto_goodput
                    << ", best " << c.best_interval_s << " s (k=" << c.best_persist_every << ") " << c.best_goodput);
        CHECK(c.auto_goodput >= 0.99 * c.best_goodput);
        CHECK(c.best_goodput < 1);
    }
}
