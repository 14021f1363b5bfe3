// The running job's save schedule (save_schedule.hpp). Application thread.
#include "save_schedule.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include <fmt/format.h>

namespace tck::schedule {

const char *mode_name(CkptInterval::Kind k) {
    switch (k) {
    case CkptInterval::Kind::automatic: return "auto";
    case CkptInterval::Kind::steps: return "steps";
    case CkptInterval::Kind::duration: return "duration";
    }
    return "?";
}

namespace {

// Adds v to the window (the newest kWindow values) and returns its median
// (of an even count, the lower middle one: of two saves, one paused by the
// machine must not double the interval); 0 for an empty window.
double windowed_median(std::deque<double> &w, double v, bool measured) {
    if (measured) {
        w.push_back(v);
        if (w.size() > SaveSchedule::kWindow) w.pop_front();
    }
    if (w.empty()) return 0;
    std::vector<double> s(w.begin(), w.end());
    std::sort(s.begin(), s.end());
    const std::size_t n = s.size();
    return s[(n - 1) / 2];
}

// The first multiple of n above step.
std::uint64_t next_multiple(std::uint64_t step, std::uint64_t n) {
    const std::uint64_t k = step / n + 1;
    return k > SaveSchedule::kNever / n ? SaveSchedule::kNever : k * n;
}

}  // namespace

double SaveSchedule::job_mtbf_s() const {
    const double m = cfg_.node_mtbf_s;
    if (!(m > 0) || std::isinf(m)) return std::numeric_limits<double>::infinity();
    return m / static_cast<double>(std::max<std::uint64_t>(1, cfg_.nodes));
}

bool SaveSchedule::due(std::uint64_t step, double now_ms, double in_save_ms) {
    if (cfg_.interval.kind == CkptInterval::Kind::steps) {
        started_ = true;
        return step > 0 && step % cfg_.interval.steps == 0;
    }
    if (!started_) {
        started_ = true;
        next_due_ = step + 1;  // the first save after one measured step
    } else if (step > prev_step_) {
        const double ms = (now_ms - prev_now_ms_) - (in_save_ms - prev_in_save_ms_);
        sum_ms_ += std::max(ms, 0.0);
        counted_ += step - prev_step_;
    }
    prev_step_ = step;
    prev_now_ms_ = now_ms;
    prev_in_save_ms_ = in_save_ms;
    return step >= next_due_;
}

void SaveSchedule::restart() {
    started_ = false;
    sum_ms_ = 0;
    counted_ = 0;
}

double SaveSchedule::local_step_s() const {
    return counted_ ? sum_ms_ / 1000.0 / static_cast<double>(counted_) : 0;
}

const Decision &SaveSchedule::decide(std::uint64_t step, const Measured &job) {
    Decision d;
    d.count = last_.count + 1;
    d.at_step = step;
    d.in = job;
    d.in.stall_s = windowed_median(stalls_, job.stall_s, true);
    // A commit or flush is the newest measured: the same one again until the
    // next completes, so counted only when it changed.
    d.in.commit_s = windowed_median(commits_, job.commit_s, job.commit_s > 0 && (commits_.empty() || commits_.back() != job.commit_s));
    d.in.flush_s = windowed_median(flushes_, job.flush_s, job.flush_s > 0 && (flushes_.empty() || flushes_.back() != job.flush_s));
    d.job_mtbf_s = job_mtbf_s();
    if (job.step_s > 0) step_s_ = job.step_s;
    d.in.step_s = step_s_;
    sum_ms_ = 0;
    counted_ = 0;

    switch (cfg_.interval.kind) {
    case CkptInterval::Kind::steps:
        d.steps = cfg_.interval.steps;
        d.next_due = next_multiple(step, d.steps);
        d.sched.bound = "given";
        break;
    case CkptInterval::Kind::duration:
        d.steps = step_s_ > 0 ? std::max<std::uint64_t>(
                                    1, static_cast<std::uint64_t>(std::min(std::round(cfg_.interval.seconds / step_s_), 1e18)))
                              : 1;
        d.sched.bound = step_s_ > 0 ? "given" : "no-step-time";
        break;
    case CkptInterval::Kind::automatic:
        if (!(step_s_ > 0)) {
            // No step measured (saves without due()): nothing to choose from.
            d.steps = 1;
            d.sched.bound = "no-step-time";
            break;
        }
        Costs c;
        c.stall_s = d.in.stall_s;
        c.commit_s = d.in.commit_s;
        c.flush_s = d.in.flush_s;
        c.restart_s = cfg_.restart_s;
        c.restart_persist_s = cfg_.restart_s + d.in.flush_s;
        Failures f;
        f.job_mtbf_s = d.job_mtbf_s;
        // Without replicas a lost node's shards are only in the persistent
        // tier; with neither, memory is all there is, and the schedule
        // serves the failures it recovers from (a process, not its node).
        f.persist_fraction = !cfg_.replicas && cfg_.persistent_tier ? 1.0 : 0.0;
        f.persistent_tier = cfg_.persistent_tier;
        Limits l;
        l.step_s = step_s_;
        l.max_overhead = cfg_.max_overhead;
        l.persist_every = cfg_.persistent_tier ? cfg_.persist_every : 0;
        d.sched = choose(c, f, l);
        d.steps = d.sched.steps;
        break;
    }
    if (cfg_.interval.kind != CkptInterval::Kind::steps) {
        d.next_due = d.steps == 0 || d.steps >= kNever - step ? kNever : step + d.steps;
        next_due_ = d.next_due;
    }
    if (cfg_.interval.kind != CkptInterval::Kind::automatic) {
        // choose() did not run: the flush cadence as given, or (auto) the
        // fewest saves whose periods cover a flush, so flushes keep up.
        if (!cfg_.persistent_tier) {
            d.sched.persist_every = 0;
            d.sched.persist_bound = "none";
        } else if (cfg_.persist_every) {
            d.sched.persist_every = cfg_.persist_every;
            d.sched.persist_bound = "given";
        } else {
            const double period = static_cast<double>(d.steps) * step_s_ + d.in.stall_s;
            d.sched.persist_every =
                period > 0 ? std::min<std::uint64_t>(persist_covering(d.in.flush_s, period), 1000000) : 1;
            d.sched.persist_bound = "flush-time";
        }
    }
    d.sched.steps = d.steps;
    d.sched.interval_s = static_cast<double>(d.steps) * step_s_;
    last_ = d;
    return last_;
}

std::string describe(const Decision &d, const RunConfig &c) {
    std::string s = fmt::format("mode={} step={} steps={} next=", mode_name(c.interval.kind), d.at_step, d.steps);
    s += d.next_due == SaveSchedule::kNever ? std::string("never") : std::to_string(d.next_due);
    s += fmt::format(" bound={} interval_s={:.4g} step_s={:.4g} stall_s={:.4g} commit_s={:.4g} flush_s={:.4g}",
                     d.sched.bound, d.sched.interval_s, d.in.step_s, d.in.stall_s, d.in.commit_s, d.in.flush_s);
    if (c.persistent_tier) {
        s += fmt::format(" persist_every={} persist_bound={}", d.sched.persist_every, d.sched.persist_bound);
    }
    if (c.interval.kind == CkptInterval::Kind::automatic) {
        s += fmt::format(" job_mtbf_s={:.6g} optimum_s={:.4g} max_overhead={:.4g} overhead={:.4g} "
                         "save_overhead={:.4g} lost_per_failure_s={:.4g}",
                         d.job_mtbf_s, d.sched.optimum_s, c.max_overhead, d.sched.overhead, d.sched.save_overhead,
                         d.sched.lost_per_failure_s);
    } else if (c.interval.kind == CkptInterval::Kind::duration) {
        s += fmt::format(" duration_s={:.6g}", c.interval.seconds);
    }
    return s;
}

}  // namespace tck::schedule
