// tests/sim/schedule_sim [DAYS [SEEDS]]: the docs' table. For each
// scenario, the goodput of the interval the schedule chooses (auto) and of
// the best fixed interval of a grid, on the same seeded failure traces.
#include <cstdio>
#include <cstdlib>

#include "scenarios.hpp"

int main(int argc, char **argv) {
    const double days = argc > 1 ? std::atof(argv[1]) : 90;
    const unsigned seeds = argc > 2 ? static_cast<unsigned>(std::atoi(argv[2])) : 20;
    if (!(days > 0) || seeds == 0) {
        std::fprintf(stderr, "usage: schedule_sim [DAYS [SEEDS]]\n");
        return 2;
    }
    std::printf("%.0f days of training, %u seeded traces each; intervals in s (flush every k versions)\n", days, seeds);
    std::printf("| scenario | failures per run | auto | auto goodput | best fixed | its goodput | auto / best |\n");
    std::printf("| --- | --- | --- | --- | --- | --- | --- |\n");
    for (const auto &s : tck::sim::scenarios()) {
        auto c = tck::sim::compare(s, days, seeds);
        auto k = [](std::uint64_t n) { return n ? " (k=" + std::to_string(n) + ")" : std::string(); };
        std::printf("| %s | %.0f | %.0f%s | %.4f | %.0f%s | %.4f | %.4f |\n", s.name.c_str(), c.failures_per_run,
                    c.auto_interval_s, k(c.auto_persist_every).c_str(), c.auto_goodput, c.best_interval_s,
                    k(c.best_persist_every).c_str(), c.best_goodput, c.auto_goodput / c.best_goodput);
    }
    return 0;
}
