// The simulator's scenarios and comparison (scenarios.hpp).
#include "scenarios.hpp"

#include <algorithm>
#include <cmath>

namespace tck::sim {

std::vector<Scenario> scenarios() {
    // Llama 3 70B's checkpoint on 2,048 nodes of 8 GPUs as tierckpt plan
    // estimates it at 10 GB/s of copy and checksum (0.55 s stall, 2.3 s to
    // commit, 60 s to relaunch + 1.8 s of restore), a 10 s step, and one
    // failure every 3 hours (the Llama 3 report: 419 unexpected
    // interruptions in 54 days on 16,384 GPUs).
    Scenario llama;
    llama.name = "memory tier, MTBF 3 h, exponential";
    llama.costs.stall_s = 0.55;
    llama.costs.commit_s = 2.3;
    llama.costs.restart_s = 61.8;
    llama.trace.mtbf_s = 3 * 3600;
    Scenario bursty = llama;
    bursty.name = "memory tier, MTBF 3 h, Weibull shape 0.7";
    bursty.trace.weibull_shape = 0.7;
    // A checkpoint written to a shared file system instead: 30 s of stall,
    // 10 minutes to restart from it.
    Scenario slow = llama;
    slow.name = "file-system checkpoints (30 s stall), MTBF 3 h, Weibull 0.7";
    slow.costs.stall_s = 30;
    slow.costs.commit_s = 30;
    slow.costs.restart_s = 600;
    slow.trace.weibull_shape = 0.7;
    // Both tiers: a tenth of the failures lose the node memory that holds
    // a shard's copies too; a flush takes 10 minutes in the background and
    // a restart from it 20 minutes.
    Scenario two = llama;
    two.name = "memory + persistent, 10% need the persistent tier, MTBF 3 h";
    two.persistent_tier = true;
    two.trace.persist_fraction = 0.1;
    two.costs.flush_s = 600;
    two.costs.restart_persist_s = 1200;
    // A small cluster: 64 nodes, one failure a day.
    Scenario small = llama;
    small.name = "memory tier, MTBF 24 h, exponential";
    small.trace.mtbf_s = 24 * 3600;
    return {llama, bursty, slow, two, small};
}

namespace {
double mean_goodput(const Scenario &s, double days, unsigned seeds, double interval, std::uint64_t k,
                    double *failures = nullptr) {
    double sum = 0, nfail = 0;
    for (unsigned seed = 1; seed <= seeds; ++seed) {
        Trace t = s.trace;
        t.seed = seed;
        Result r = run(s.costs, t, days * 86400, interval, k);
        sum += r.goodput;
        nfail += static_cast<double>(r.failures);
    }
    if (failures) *failures = nfail / seeds;
    return sum / seeds;
}
}  // namespace

Comparison compare(const Scenario &s, double days, unsigned seeds) {
    schedule::Failures f;
    f.job_mtbf_s = s.trace.mtbf_s;
    f.persist_fraction = s.trace.persist_fraction;
    f.persistent_tier = s.persistent_tier;
    schedule::Limits l;
    l.step_s = s.step_s;
    schedule::Schedule a = schedule::choose(s.costs, f, l);
    Comparison c;
    c.auto_interval_s = a.interval_s;
    c.auto_persist_every = a.persist_every;
    c.auto_goodput = mean_goodput(s, days, seeds, a.interval_s, a.persist_every, &c.failures_per_run);
    c.best_goodput = -1;
    std::vector<std::uint64_t> ks = {0};
    if (s.persistent_tier) {
        ks.clear();
        for (std::uint64_t k = 1; k <= 32; ++k) ks.push_back(k);
    }
    // Every whole number of steps from 1/8 to 8 times auto's, or 200 of
    // them evenly spread on a log scale where there are more.
    std::vector<double> intervals;
    const double lo = std::max({a.interval_s / 8, s.step_s, s.costs.commit_s}), hi = a.interval_s * 8;
    const double n_steps = std::floor(hi / s.step_s) - std::ceil(lo / s.step_s) + 1;
    for (int i = 0; i < 200 && i < n_steps; ++i) {
        double x = n_steps <= 200 ? (std::ceil(lo / s.step_s) + i) * s.step_s
                                  : std::round(lo * std::pow(hi / lo, i / 199.0) / s.step_s) * s.step_s;
        intervals.push_back(x);
    }
    for (double interval : intervals) {
        for (std::uint64_t k : ks) {
            if (k && static_cast<double>(k) * (interval + s.costs.stall_s) < s.costs.flush_s) continue;
            double g = mean_goodput(s, days, seeds, interval, k);
            if (g > c.best_goodput) {
                c.best_goodput = g;
                c.best_interval_s = interval;
                c.best_persist_every = k;
            }
        }
    }
    return c;
}

}  // namespace tck::sim
