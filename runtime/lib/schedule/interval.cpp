// The checkpoint interval: Young's and Daly's estimates and the bounded,
// whole-step schedule (interval.hpp states the model).
#include "lib/schedule/interval.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace tck::schedule {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

bool no_failures(double mtbf_s) { return !(mtbf_s > 0) || std::isinf(mtbf_s); }

// Steps of step_s that cover at least `seconds` (a tiny tolerance keeps an
// exact multiple from rounding up).
std::uint64_t steps_covering(double seconds, double step_s) {
    if (seconds <= 0) return 0;
    double n = std::ceil(seconds / step_s - 1e-9);
    return n >= 1e18 ? std::uint64_t{1000000000000000000ull} : static_cast<std::uint64_t>(n);
}

}  // namespace

std::uint64_t persist_covering(double flush_s, double period_s) {
    return std::max<std::uint64_t>(1, steps_covering(flush_s, period_s));
}

double young_interval(double cost_s, double mtbf_s) {
    if (no_failures(mtbf_s)) return kInf;
    if (!(cost_s > 0)) return 0;
    return std::sqrt(2 * cost_s * mtbf_s);
}

double daly_interval(double cost_s, double mtbf_s) {
    if (no_failures(mtbf_s)) return kInf;
    if (!(cost_s > 0)) return 0;
    if (cost_s >= 2 * mtbf_s) return mtbf_s;
    double r = cost_s / (2 * mtbf_s);
    return std::sqrt(2 * cost_s * mtbf_s) * (1 + std::sqrt(r) / 3 + r / 9) - cost_s;
}

double expected_overhead(const Costs &c, const Failures &f, double interval_s, std::uint64_t persist_every) {
    double period = interval_s + c.stall_s;
    if (!(period > 0)) return 0;
    double k = persist_every ? static_cast<double>(persist_every) : kInf;
    double w = c.stall_s / period;
    if (f.persistent_tier && persist_every) w += c.flush_stall_s / (k * period);
    if (no_failures(f.job_mtbf_s)) return w;
    double lambda1 = (1 - f.persist_fraction) / f.job_mtbf_s;
    double lambda2 = f.persist_fraction / f.job_mtbf_s;
    w += lambda1 * (period / 2 + c.commit_s + c.restart_s);
    if (f.persistent_tier && persist_every && lambda2 > 0) {
        w += lambda2 * (k * period / 2 + c.commit_s + c.flush_s + c.restart_persist_s);
    }
    return w;
}

Schedule choose(const Costs &c, const Failures &f, const Limits &l) {
    Schedule s;
    const double step = l.step_s > 0 ? l.step_s : 1e-9;
    const double frac = std::clamp(f.persist_fraction, 0.0, 1.0);
    Failures fail = f;
    fail.persist_fraction = frac;
    const bool two_level = f.persistent_tier && frac > 0;

    // The shortest interval the job can keep: one step, a whole commit
    // (the next save must not wait for it), and the overhead cap.
    double cap_interval = l.max_overhead > 0 ? c.stall_s / l.max_overhead - c.stall_s : 0;
    std::uint64_t min_steps = 1;
    std::string min_bound = "one-step";
    if (std::uint64_t n = steps_covering(c.commit_s, step); n > min_steps) {
        min_steps = n;
        min_bound = "commit";
    }
    if (std::uint64_t n = steps_covering(cap_interval, step); n > min_steps) {
        min_steps = n;
        min_bound = "overhead-cap";
    }

    const double lambda1 = no_failures(f.job_mtbf_s) ? 0 : (1 - frac) / f.job_mtbf_s;
    const double lambda2 = no_failures(f.job_mtbf_s) ? 0 : frac / f.job_mtbf_s;

    // The unbounded optimum: interval (compute between saves) and k.
    double opt = kInf;
    std::uint64_t k = l.persist_every;
    if (two_level) {
        double best_w = kInf;
        std::uint64_t k_lo = l.persist_every ? l.persist_every : 1;
        std::uint64_t k_hi = l.persist_every ? l.persist_every : 100000;
        for (std::uint64_t kk = k_lo; kk <= k_hi; ++kk) {
            double kd = static_cast<double>(kk);
            double period = std::sqrt(2 * (c.stall_s + c.flush_stall_s / kd) / (lambda1 + kd * lambda2));
            double interval = std::max(period - c.stall_s, 0.0);
            double w = expected_overhead(c, fail, interval, kk);
            if (w < best_w) {
                best_w = w;
                opt = interval;
                k = kk;
            } else if (!l.persist_every && kk > 2 * k + 8) {
                break;  // past the minimum (the waste is convex in k)
            }
        }
    } else if (lambda1 > 0) {
        opt = daly_interval(c.stall_s, 1 / lambda1);
    }
    s.optimum_s = opt;

    if (std::isinf(opt)) {
        // No failure the memory tier recovers from: saving only costs.
        s.steps = 0;
        s.bound = "no-failures";
    } else {
        // Whole steps: the better of the two neighbours, then the bounds.
        // At most 10^18 steps (a huge MTBF, a tiny step): the cast stays defined.
        const double whole = std::min(std::floor(opt / step), 1e18);
        std::uint64_t lo = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(whole));
        std::uint64_t hi = lo + 1;
        auto w_at = [&](std::uint64_t n) {
            double iv = static_cast<double>(n) * step;
            std::uint64_t kk = two_level ? k : 0;
            return expected_overhead(c, fail, iv, kk);
        };
        s.steps = w_at(hi) < w_at(lo) ? hi : lo;
        s.bound = "optimum";
        if (s.steps < min_steps) {
            s.steps = min_steps;
            s.bound = min_bound;
        }
    }
    s.interval_s = static_cast<double>(s.steps) * step;

    // The persistent tier: flush every k-th version, never more often than a
    // flush completes.
    if (!f.persistent_tier) {
        s.persist_every = 0;
        s.persist_bound = "none";
    } else if (l.persist_every) {
        s.persist_every = l.persist_every;
        s.persist_bound = "given";
    } else if (s.steps == 0) {
        s.persist_every = 0;
        s.persist_bound = "none";
    } else {
        double period = s.interval_s + c.stall_s;
        std::uint64_t need = persist_covering(c.flush_s, period);
        s.persist_every = two_level ? std::max(k, need) : need;
        s.persist_bound = two_level && k >= need ? "optimum" : "flush-time";
    }

    if (s.steps == 0) {
        s.save_overhead = 0;
        s.overhead = 0;
        s.lost_per_failure_s = kInf;
        s.lost_per_persist_failure_s = kInf;
        return s;
    }
    const double period = s.interval_s + c.stall_s;
    s.save_overhead = c.stall_s / period;
    if (s.persist_every) s.save_overhead += c.flush_stall_s / (static_cast<double>(s.persist_every) * period);
    s.overhead = expected_overhead(c, fail, s.interval_s, s.persist_every);
    s.lost_per_failure_s = period / 2 + c.commit_s + c.restart_s;
    s.lost_per_persist_failure_s =
        s.persist_every ? static_cast<double>(s.persist_every) * period / 2 + c.commit_s + c.flush_s + c.restart_persist_s
                        : kInf;
    return s;
}

}  // namespace tck::schedule
