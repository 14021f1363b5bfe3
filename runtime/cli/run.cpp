// tierckpt run: runs a job step, and when it fails because a node did,
// relaunches it on the survivors plus spare nodes of the allocation, so the
// program resumes from the checkpoints in node memory (see tierckpt(1)).
//
// It wraps the user's srun line: relays the step's output line by line,
// watches for the signs of a failing step (the runtime's "peer ... silent"
// line, srun's task errors), finds which nodes failed (Slurm's node states
// and a probe step on each node), and starts the next attempt. Nothing here
// goes through a shell.
#include "run.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "common/clock.hpp"
#include "common/env_names.hpp"
#include "common/parse.hpp"
#include "common/run_report.hpp"
#include "common/size.hpp"
#include "common/unique_fd.hpp"
#include "run_plan.hpp"

extern char **environ;

namespace tck::cli {

namespace {

constexpr const char *kRunUsage = R"(Usage: tierckpt run [--spares N] [--min-nodes K] [--max-restarts M] [--probe-timeout S] -- srun [SRUN OPTIONS] PROGRAM [ARGS...]

Runs a job step inside an allocation (sbatch --no-kill or salloc --no-kill)
on all of the allocation's nodes but the last N, and when the step fails
because a node failed, relaunches it on the surviving nodes plus spares, so
the program resumes from its checkpoints in node memory.

Options:
  --spares N         keep the allocation's last N nodes as spares (default 0)
  --min-nodes K      with no spare left, relaunch on the survivors while at
                     least K nodes remain, with as many tasks a node (the
                     program must restore on another number of ranks:
                     sliced and replicated regions); default: never fewer
  --max-restarts M   relaunch at most M times (default 3)
  --probe-timeout S  a node that cannot run a probe step in S seconds counts
                     as failed (default 5)
  -h, --help         show this help

The srun line must not choose nodes (-N, -w, -x, -r, -F): tierckpt run adds
--nodes, --nodelist and --kill-on-bad-exit=1 (and --overlap when it
relaunches). Exit status: the last step's (0 when the program finished).
See tierckpt(1).
)";

// How long srun may take to end by itself once the step is failing.
constexpr double kSrunGraceS = 3.0;

void say(const std::string &msg) {
    std::fflush(stdout);
    fmt::print(stderr, "tierckpt run: {}\n", msg);
    std::fflush(stderr);
}

std::vector<char *> c_argv(std::vector<std::string> &args) {
    std::vector<char *> v;
    for (auto &a : args) v.push_back(a.data());
    v.push_back(nullptr);
    return v;
}

// Forks and execs argv with stdout (and stderr when err_fd >= 0) on pipes.
pid_t spawn(std::vector<std::string> argv, int &out_fd, int *err_fd, bool quiet_stderr) {
    int out[2], err[2] = {-1, -1};
    if (::pipe2(out, O_CLOEXEC) != 0) return -1;
    if (err_fd && ::pipe2(err, O_CLOEXEC) != 0) {
        ::close(out[0]);
        ::close(out[1]);
        return -1;
    }
    auto args = c_argv(argv);
    pid_t pid = ::fork();
    if (pid == 0) {
        ::signal(SIGINT, SIG_DFL);
        ::signal(SIGTERM, SIG_DFL);
        ::dup2(out[1], 1);
        if (err_fd) ::dup2(err[1], 2);
        else if (quiet_stderr) {
            int devnull = ::open("/dev/null", O_WRONLY);
            if (devnull >= 0) ::dup2(devnull, 2);
        }
        ::execvp(args[0], args.data());
        fmt::print(stderr, "tierckpt run: cannot run {}: {}\n", argv[0], std::strerror(errno));
        ::_exit(127);
    }
    ::close(out[1]);
    if (err_fd) ::close(err[1]);
    if (pid < 0) {
        ::close(out[0]);
        if (err_fd) ::close(err[0]);
        return -1;
    }
    out_fd = out[0];
    if (err_fd) *err_fd = err[0];
    return pid;
}

int exit_status(int wstatus) {
    if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
    return 1;
}

// Runs a Slurm client command to the end (at most timeout_s) and returns
// its output; nullopt when it failed or took too long.
std::optional<std::string> capture(std::vector<std::string> argv, double timeout_s) {
    int fd = -1;
    pid_t pid = spawn(std::move(argv), fd, nullptr, true);
    if (pid < 0) return std::nullopt;
    UniqueFd out(fd);
    std::string text;
    double deadline = now_s() + timeout_s;
    char buf[4096];
    for (;;) {
        struct pollfd p = {out.get(), POLLIN, 0};
        int left = static_cast<int>((deadline - now_s()) * 1000);
        if (left <= 0) break;
        if (::poll(&p, 1, left) <= 0) continue;
        ssize_t n = ::read(out.get(), buf, sizeof buf);
        if (n <= 0) break;
        text.append(buf, static_cast<std::size_t>(n));
    }
    int ws = 0;
    if (now_s() >= deadline) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &ws, 0);
        return std::nullopt;
    }
    ::waitpid(pid, &ws, 0);
    if (exit_status(ws) != 0) return std::nullopt;
    return text;
}

volatile sig_atomic_t g_signal = 0;
volatile pid_t g_child = -1;

void on_signal(int sig) {
    g_signal = sig;
    if (g_child > 0) ::kill(g_child, sig);  // srun passes it on to the tasks
}

// What one attempt saw.
struct Attempt {
    int status = 0;
    double t_start = 0, t_first_sign = 0, t_end = 0;
    std::vector<std::string> signs;          // how the failure was seen, in words
    std::vector<std::string> suspects;       // nodes named by those signs
    std::optional<double> death_estimate;    // when the runtime's timer says the node went quiet
    std::vector<report::Restore> restores;
    std::uint64_t committed = 0;             // the newest version the step committed
    std::string schedule;                    // the newest schedule decision's fields (tierckpt-report schedule)
    double t_first_report = 0, t_last_report = 0;
    bool account_printed = false;
};

void add_unique(std::vector<std::string> &v, const std::string &s) {
    if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
}

// Where the restored shards came from and how long it took.
void print_account(Attempt &a, int number, std::optional<double> t_decision, std::optional<double> detect_s) {
    if (a.account_printed || a.restores.empty()) return;
    a.account_printed = true;
    std::map<std::string, int> by_source;
    std::uint64_t bytes = 0, version = 0, saved_world = 0, local = 0, peer = 0, persistent = 0;
    double ms = 0, restore_start = 1e300;
    for (const auto &r : a.restores) {
        by_source[r.source]++;
        bytes += r.bytes;
        saved_world = std::max(saved_world, r.parts.saved_world);
        local += r.parts.local_bytes;
        peer += r.parts.peer_bytes;
        persistent += r.parts.persistent_bytes;
        version = std::max(version, r.version);
        ms = std::max(ms, r.ms);
    }
    restore_start = a.t_first_report - ms / 1000.0;
    if (static_cast<std::size_t>(by_source["none"]) == a.restores.size()) {
        say(fmt::format("attempt {}: {} ranks found no checkpoint: the program starts from the beginning", number,
                        a.restores.size()));
        return;
    }
    std::string sources;
    for (const char *s : {"local", "peer", "persistent"}) {
        sources += fmt::format("{}{} {}", sources.empty() ? "" : ", ", s, by_source.count(s) ? by_source[s] : 0);
    }
    std::string timing = fmt::format("restore {:.2f} s ({:.2f} GB/s)", ms / 1000.0, ms > 0 ? bytes / ms / 1e6 : 0.0);
    if (t_decision) timing = fmt::format("relaunch {:.1f} s, ", std::max(0.0, restore_start - *t_decision)) + timing;
    if (detect_s) timing = fmt::format("detect {:.1f} s, ", *detect_s) + timing;
    // An elastic restore: the version came from another number of ranks,
    // each new rank reading the saved shards its slices overlap.
    std::string elastic;
    if (saved_world && saved_world != a.restores.size()) {
        elastic = fmt::format(" (saved by {} ranks; read: {} local, {} from peers, {} from the persistent tier)",
                              saved_world, format_size(local), format_size(peer), format_size(persistent));
    }
    say(fmt::format("attempt {}: restored version {} on {} ranks{}, {}: {}; {}", number, version, a.restores.size(),
                    elastic, format_size(bytes), sources, timing));
    // Where the slowest rank's restore went.
    const report::Restore &slow = *std::max_element(
        a.restores.begin(), a.restores.end(), [](const report::Restore &x, const report::Restore &y) { return x.ms < y.ms; });
    const report::RestoreBreakdown &p = slow.parts;
    say(fmt::format("attempt {}: slowest rank {} on {} ({}, via {}): {:.0f} ms: inventory {:.0f}, plan {:.0f}, move "
                    "{:.0f}, verify {:.0f}, copy {:.0f}, agree {:.0f}",
                    number, slow.rank, slow.node, slow.source, slow.via, slow.ms, p.inventory_ms, p.plan_ms,
                    p.move_ms, p.verify_ms, p.copy_ms, p.agree_ms));
}

// A probe step (`srun --overlap ... true`) on each node of a failing step,
// started at the step's first sign of failure, so that the probes run while
// srun winds down instead of after it.
class Probes {
public:
    Probes(std::string srun, std::vector<std::string> nodes) : srun_(std::move(srun)), nodes_(std::move(nodes)) {}
    Probes(const Probes &) = delete;
    Probes &operator=(const Probes &) = delete;
    ~Probes() {
        for (auto &p : probes_) {
            int ws = 0;
            if (p.status < 0) {
                ::kill(p.pid, SIGKILL);
                ::waitpid(p.pid, &ws, 0);
            }
        }
    }
    // Starts a probe on every node that has none yet, except `skip`.
    void start(const std::vector<std::string> &skip = {}) {
        for (const auto &n : nodes_) {
            if (std::find(skip.begin(), skip.end(), n) != skip.end()) continue;
            if (std::any_of(probes_.begin(), probes_.end(), [&](const Probe &p) { return p.node == n; })) continue;
            int fd = -1;
            pid_t pid = spawn({srun_, "--overlap", "--nodes=1", "--ntasks=1", "--nodelist=" + n,
                               "--job-name=tierckpt-probe", "true"},
                              fd, nullptr, true);
            if (pid > 0) probes_.push_back({n, pid, UniqueFd(fd), now_s(), -1});
        }
    }
    struct Probe {
        std::string node;
        pid_t pid;
        UniqueFd out;
        double started;
        int status;  // -1: still running
    };
    std::vector<Probe> &all() { return probes_; }

private:
    std::string srun_;
    std::vector<std::string> nodes_;
    std::vector<Probe> probes_;
};

// Runs one attempt to its end, relaying its output. At the first sign of
// failure, probes of the step's nodes start.
Attempt run_step(const std::vector<std::string> &cmd, int number, std::optional<double> t_decision,
                 std::optional<double> detect_s, Probes &probes) {
    Attempt a;
    a.t_start = now_s();
    int out_fd = -1, err_fd = -1;
    pid_t pid = spawn(cmd, out_fd, &err_fd, false);
    if (pid < 0) {
        say(fmt::format("cannot start {}: {}", cmd[0], std::strerror(errno)));
        a.status = 127;
        return a;
    }
    g_child = pid;
    UniqueFd out(out_fd), err(err_fd);
    std::string buf[2];
    bool open[2] = {true, true};
    bool killed = false;
    auto handle_line = [&](const std::string &line, int which) {
        if (auto v = report::parse_commit(line)) {
            a.committed = std::max(a.committed, *v);
            return;
        }
        if (auto f = report::parse_schedule(line)) {
            a.schedule = *f;  // told once, when the attempt ends
            return;
        }
        if (auto r = report::parse_restore(line)) {
            if (a.restores.empty()) a.t_first_report = now_s();
            a.t_last_report = now_s();
            a.restores.push_back(*r);
            return;  // ours, not the program's
        }
        std::fwrite(line.data(), 1, line.size(), which == 0 ? stdout : stderr);
        std::fflush(which == 0 ? stdout : stderr);
        auto first_sign = [&]() {
            if (a.t_first_sign != 0) return;
            a.t_first_sign = now_s();
            probes.start();
        };
        if (auto p = parse_peer_lost(line)) {
            first_sign();
            if (std::find(a.suspects.begin(), a.suspects.end(), p->node) == a.suspects.end()) {
                a.suspects.push_back(p->node);
                a.signs.push_back(fmt::format("the runtime heard nothing from {} for {:.1f} s{}", p->node, p->silent_s,
                                              p->gone ? " and its heartbeat port was closed" : ""));
            }
            double death = now_s() - p->silent_s;
            if (!a.death_estimate || death < *a.death_estimate) a.death_estimate = death;
        } else if (auto n = parse_node_failure(line)) {
            first_sign();
            add_unique(a.suspects, *n);
            add_unique(a.signs, fmt::format("srun reported a node failure on {}", *n));
        } else if (is_step_failure_line(line)) {
            first_sign();
        }
    };
    int ws = 0;
    for (;;) {
        if (!open[0] && !open[1]) break;
        struct pollfd p[2] = {{open[0] ? out.get() : -1, POLLIN, 0}, {open[1] ? err.get() : -1, POLLIN, 0}};
        ::poll(p, 2, 200);
        for (int i = 0; i < 2; ++i) {
            if (!open[i] || !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char chunk[8192];
            ssize_t n = ::read(i == 0 ? out.get() : err.get(), chunk, sizeof chunk);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                open[i] = false;
                if (!buf[i].empty()) handle_line(buf[i], i);
                buf[i].clear();
                continue;
            }
            buf[i].append(chunk, static_cast<std::size_t>(n));
            std::size_t nl;
            while ((nl = buf[i].find('\n')) != std::string::npos) {
                handle_line(buf[i].substr(0, nl + 1), i);
                buf[i].erase(0, nl + 1);
            }
        }
        if (!a.restores.empty() && now_s() - a.t_last_report > 1.0) print_account(a, number, t_decision, detect_s);
        // srun waits for a dead node's tasks until Slurm declares the node
        // down (SlurmdTimeout, 300 s by default): once the step is failing
        // and the survivors are gone, it has nothing more to say.
        // A silent peer means a node that srun will wait for: a second for
        // the survivors' last lines is enough then.
        double grace = a.death_estimate ? 1.0 : kSrunGraceS;
        if (!killed && a.t_first_sign > 0 && now_s() - a.t_first_sign > grace) {
            ::kill(pid, SIGKILL);
            killed = true;
        }
    }
    ::waitpid(pid, &ws, 0);
    g_child = -1;
    a.status = killed ? 128 + SIGKILL : exit_status(ws);
    // srun exits 0 when every node of the step failed (no task reported a
    // status): that is no success.
    if (a.status == 0 && !a.suspects.empty()) a.status = TIERCKPT_EXIT_PEER_LOST;
    a.t_end = now_s();
    if (a.t_first_sign == 0 && a.status != 0) a.t_first_sign = a.t_end;
    print_account(a, number, t_decision, detect_s);
    if (!a.schedule.empty()) say(fmt::format("attempt {}: the newest checkpoint schedule: {}", number, a.schedule));
    return a;
}

// The step that prepares the spares' stores (run_plan.hpp), in the
// background. Its outcome is told only when it failed; it is ended when
// tierckpt run ends.
class Warmup {
public:
    explicit Warmup(std::vector<std::string> cmd) {
        if (cmd.empty()) return;
        int fd = -1;
        pid_ = spawn(std::move(cmd), fd, nullptr, true);
        out_.reset(fd);
    }
    Warmup(const Warmup &) = delete;
    Warmup &operator=(const Warmup &) = delete;
    ~Warmup() {
        if (pid_ <= 0) return;
        int ws = 0;
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &ws, 0);
    }
    // Says once when the step ended with an error (the spares' stores are
    // then made when the step lands on them).
    void check() {
        int ws = 0;
        if (pid_ <= 0 || ::waitpid(pid_, &ws, WNOHANG) != pid_) return;
        pid_ = -1;
        if (int st = exit_status(ws); st != 0) {
            say(fmt::format("preparing the spares' node stores failed (srun exit status {}); a relaunch makes them "
                            "instead",
                            st));
        }
    }

private:
    pid_t pid_ = -1;
    UniqueFd out_;
};

// Which of `nodes` failed: Slurm's view, then a probe step on every other
// node, all at once (those `probes` started already keep running).
// `suspects`: nodes the step's output named (the runtime's silent peers,
// srun's node failures). `how` gets one phrase per failed node.
std::vector<std::string> find_failed(const std::vector<std::string> &nodes, Probes &probe_set, unsigned timeout_s,
                                     const std::vector<std::string> &suspects, std::vector<std::string> &how) {
    std::vector<std::string> failed;
    if (auto out = capture({"sinfo", "-h", "-N", "-n", join_nodes(nodes), "-o", "%N %T"}, 20)) {
        for (const auto &n : unusable_nodes(*out)) {
            add_unique(failed, n);
            add_unique(how, fmt::format("Slurm marks {} unusable", n));
        }
    }
    probe_set.start(failed);
    auto &probes = probe_set.all();
    // Every probe runs at once. A node the runtime already named as silent
    // gets no longer than the others took, plus half that again (at least
    // half a second): it has been silent for the whole peer timeout (or its
    // rank's port answered closed), the probe only tells a dead node from a
    // dead process, and the others'
    // probes show how long a live node takes right now.
    double start = now_s(), others_done = 0;
    for (const auto &p : probes) start = std::min(start, p.started);
    const double deadline = start + timeout_s;
    for (;;) {
        bool all = true, others = true;
        for (auto &p : probes) {
            int ws = 0;
            if (p.status < 0 && ::waitpid(p.pid, &ws, WNOHANG) == p.pid) p.status = exit_status(ws);
            if (p.status < 0) {
                all = false;
                if (std::find(suspects.begin(), suspects.end(), p.node) == suspects.end()) others = false;
            }
        }
        double now = now_s();
        if (others && others_done == 0) others_done = now;
        if (all || now >= deadline ||
            (others && now >= std::max(others_done, start) + std::max(0.5, (others_done - start) / 2))) {
            break;
        }
        ::usleep(20000);
    }
    for (auto &p : probes) {
        if (std::find(failed.begin(), failed.end(), p.node) != failed.end()) continue;
        if (p.status < 0) {
            int ws = 0;
            ::kill(p.pid, SIGKILL);
            ::waitpid(p.pid, &ws, 0);
            p.status = 128 + SIGKILL;
            add_unique(failed, p.node);
            add_unique(how, fmt::format("{} did not run a probe step in {:.1f} s", p.node, now_s() - p.started));
        } else if (p.status != 0) {
            add_unique(failed, p.node);
            add_unique(how, fmt::format("{} failed a probe step (status {})", p.node, p.status));
        }
    }
    return failed;
}

}  // namespace

int cmd_run(const std::vector<std::string> &args) {
    if (!args.empty() && (args[0] == "-h" || args[0] == "--help")) {
        std::fputs(kRunUsage, stdout);
        return 0;
    }
    auto opts = parse_run_args(args);
    if (!opts) {
        fmt::print(stderr, "tierckpt run: {}\n", opts.status().message());
        return 2;
    }
    const char *job = std::getenv("SLURM_JOB_ID");
    const char *nodelist = std::getenv("SLURM_JOB_NODELIST");
    if (!job || !nodelist) {
        fmt::print(stderr, "tierckpt run: not inside a Slurm allocation (no SLURM_JOB_ID): run it in an sbatch "
                           "script or under salloc, with --no-kill so that a failed node does not end the job\n");
        return 2;
    }
    auto hosts = capture({"scontrol", "show", "hostnames", nodelist}, 30);
    std::vector<std::string> all;
    if (hosts) {
        std::size_t at = 0, nl;
        while ((nl = hosts->find('\n', at)) != std::string::npos) {
            if (nl > at) all.push_back(hosts->substr(at, nl - at));
            at = nl + 1;
        }
    }
    if (all.empty()) {
        fmt::print(stderr, "tierckpt run: cannot expand the allocation's node list '{}' with scontrol\n", nodelist);
        return 2;
    }
    if (opts->spares >= all.size()) {
        fmt::print(stderr,
                   "tierckpt run: --spares={} leaves no node for the step: the allocation has {} node(s) ({}); "
                   "allocate more nodes or keep fewer spares\n",
                   opts->spares, all.size(), join_nodes(all));
        return 2;
    }
    std::vector<std::string> nodes(all.begin(), all.end() - opts->spares);
    std::vector<std::string> spares(all.end() - opts->spares, all.end());
    const std::size_t first_nodes = nodes.size();
    // srun's own default when its line gives no count (salloc -n, sbatch -n).
    if (auto n = parse_uint("SLURM_NTASKS", std::getenv("SLURM_NTASKS") ? std::getenv("SLURM_NTASKS") : "", 1,
                            10000000)) {
        opts->env_ntasks = static_cast<unsigned>(*n);
    }
    if (Status st = check_min_nodes(*opts, first_nodes); !st) {
        fmt::print(stderr, "tierckpt run: {}\n", st.message());
        return 2;
    }

    struct sigaction sa {};
    sa.sa_handler = on_signal;
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    ::setenv(env::kRunReport, "1", 1);

    // The spares' stores are made (and their memory touched) now, beside
    // the first attempt, not when a relaunch needs them.
    Warmup warmup(warmup_command(*opts, spares));

    std::vector<std::string> failed_all;
    std::size_t first_ranks = 0;
    std::optional<double> t_decision, detect_s;
    std::uint64_t committed = 0;
    for (unsigned restart = 0;; ++restart) {
        int number = static_cast<int>(restart) + 1;
        say(fmt::format("attempt {}: step on {}{}", number, join_nodes(nodes),
                        spares.empty() ? std::string() : " (spares: " + join_nodes(spares) + ")"));
        Probes probes(opts->srun[0], nodes);
        std::optional<std::size_t> ntasks;
        if (nodes.size() != first_nodes) {
            auto t = relaunch_tasks(*opts, first_nodes, first_ranks, nodes.size());
            if (!t) {
                say(t.status().message());
                return 2;
            }
            ntasks = *t;
        }
        Attempt a = run_step(srun_command(*opts, nodes, restart > 0, ntasks), number, t_decision, detect_s, probes);
        // The ranks the first attempt ran, as the runtime reported them.
        if (restart == 0) first_ranks = a.restores.size();
        warmup.check();
        for (const auto &r : a.restores) committed = std::max(committed, r.version);
        committed = std::max(committed, a.committed);
        // The next attempt must find this version or a clear error, never
        // start over as if nothing had been saved.
        if (committed > 0) ::setenv(env::kExpectVersion, std::to_string(committed).c_str(), 1);
        if (a.status == 0) {
            say(fmt::format("the program finished (attempt {}, {} restart(s))", number, restart));
            return 0;
        }
        if (g_signal) {
            say(fmt::format("stopped by signal {}; not relaunching", static_cast<int>(g_signal)));
            return a.status;
        }
        std::vector<std::string> how = a.signs;
        std::vector<std::string> failed = find_failed(nodes, probes, opts->probe_timeout_s, a.suspects, how);
        double decided = now_s();
        if (failed.empty() && a.status != TIERCKPT_EXIT_PEER_LOST) {
            say(fmt::format("the program failed (exit status {}) and every node of the step answers: not a node "
                            "failure, not relaunching",
                            a.status));
            return a.status;
        }
        if (restart >= opts->max_restarts) {
            say(fmt::format("the step failed again (exit status {}{}); giving up after {} restart(s) "
                            "(--max-restarts)",
                            a.status, failed.empty() ? "" : ", failed: " + join_nodes(failed), restart));
            return a.status;
        }
        for (const auto &n : failed) add_unique(failed_all, n);
        auto next = next_nodes(nodes, spares, failed_all, opts->min_nodes);
        if (!next) {
            say(next.status().message());
            return a.status;
        }
        std::vector<std::string> replaced_by;
        for (const auto &n : *next) {
            if (std::find(nodes.begin(), nodes.end(), n) == nodes.end()) replaced_by.push_back(n);
        }
        double since = a.death_estimate ? *a.death_estimate : a.t_first_sign;
        detect_s = decided - since;
        t_decision = decided;
        std::string seen;
        for (const auto &h : how) seen += (seen.empty() ? "" : "; ") + h;
        say(fmt::format("restart {}: {} (exit status {}); seen: {}; detected in {:.1f} s; relaunching on {}{}{}", number,
                        failed.empty() ? std::string("a rank lost a peer, every node answers") : "failed: " + join_nodes(failed),
                        a.status, seen.empty() ? "the step's exit status" : seen, *detect_s, join_nodes(*next),
                        replaced_by.empty() ? std::string()
                                            : fmt::format(" (spare{} {} in)", replaced_by.size() > 1 ? "s" : "",
                                                          join_nodes(replaced_by)),
                        next->size() < nodes.size()
                            ? fmt::format(" (no spare left: {} node(s) instead of {}, --min-nodes={})", next->size(),
                                          nodes.size(), opts->min_nodes)
                            : std::string()));
        std::vector<std::string> left;
        for (const auto &n : spares) {
            if (std::find(next->begin(), next->end(), n) == next->end() &&
                std::find(failed_all.begin(), failed_all.end(), n) == failed_all.end()) {
                left.push_back(n);
            }
        }
        nodes = *next;
        spares = left;
    }
}

}  // namespace tck::cli
