// The simulator's core (schedule_sim.hpp).
#include "schedule_sim.hpp"

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <random>

namespace tck::sim {

namespace {

// Uniform in (0, 1), the same on every platform for a seed.
class Uniform {
public:
    explicit Uniform(std::uint64_t seed) : g_(seed) {}
    double next() {
        double u = static_cast<double>(g_() >> 11) * 0x1.0p-53;
        return u > 0 ? u : 0x1.0p-53;
    }

private:
    std::mt19937_64 g_;
};

class Failures {
public:
    explicit Failures(const Trace &t) : t_(t), u_(t.seed) {
        if (t.weibull_shape > 0) scale_ = t.mtbf_s / std::tgamma(1 + 1 / t.weibull_shape);
    }
    // The time from one failure to the next.
    double gap() {
        double e = -std::log(u_.next());
        return t_.weibull_shape > 0 ? scale_ * std::pow(e, 1 / t_.weibull_shape) : t_.mtbf_s * e;
    }
    bool needs_persistent() { return u_.next() < t_.persist_fraction; }

private:
    Trace t_;
    Uniform u_;
    double scale_ = 0;
};

struct Commit {
    double at;    // wall time it commits
    double work;  // the work it holds
};

}  // namespace

Result run(const schedule::Costs &c, const Trace &trace, double work_s, double interval_s,
           std::uint64_t persist_every) {
    Result r;
    Failures fail(trace);
    const bool failures = trace.mtbf_s > 0 && std::isfinite(trace.mtbf_s);
    double t = 0, w = 0;                  // wall time, work done
    double committed = 0, flushed = 0;    // work held by the newest committed / flushed version
    std::uint64_t ncommitted = 0;
    std::deque<Commit> commits;           // versions saved, not committed yet
    double flush_done = -1, flush_work = 0;  // the flush in progress (-1: none)
    double next_failure = failures ? fail.gap() : std::numeric_limits<double>::infinity();

    // Commits and flushes that complete by `until`.
    auto settle = [&](double until) {
        while (!commits.empty() && commits.front().at <= until) {
            Commit v = commits.front();
            commits.pop_front();
            if (flush_done >= 0 && flush_done <= v.at) {
                flushed = std::max(flushed, flush_work);
                flush_done = -1;
            }
            committed = std::max(committed, v.work);
            ++ncommitted;
            if (persist_every && ncommitted % persist_every == 0 && flush_done < 0) {
                flush_done = v.at + c.flush_s;
                flush_work = v.work;
            }
        }
        if (flush_done >= 0 && flush_done <= until) {
            flushed = std::max(flushed, flush_work);
            flush_done = -1;
        }
    };
    // A failure at next_failure: back to a version, then the restart
    // (itself interrupted by the failures that land in it).
    auto fail_now = [&]() {
        settle(next_failure);
        t = next_failure;
        ++r.failures;
        bool persistent = fail.needs_persistent();
        w = persistent ? flushed : committed;
        committed = w;  // what is left to restore from
        commits.clear();
        flush_done = -1;
        double restart = persistent ? c.restart_persist_s : c.restart_s;
        next_failure = t + fail.gap();
        while (next_failure < t + restart) {
            t = next_failure;
            ++r.failures;
            next_failure = t + fail.gap();
        }
        t += restart;
    };
    // Advances the wall time by dt, accruing work when computing; false
    // when a failure cut it short.
    auto advance = [&](double dt, bool computing) {
        if (next_failure < t + dt) {
            fail_now();
            return false;
        }
        t += dt;
        if (computing) w += dt;
        settle(t);
        return true;
    };

    while (w < work_s) {
        if (!advance(std::min(interval_s, work_s - w), true)) continue;
        if (w >= work_s) break;
        double saved = w;
        if (!advance(c.stall_s, false)) continue;
        ++r.saves;
        commits.push_back({t + c.commit_s, saved});
    }
    r.goodput = work_s / t;
    return r;
}

}  // namespace tck::sim
