#include "run_plan.hpp"

#include <algorithm>
#include <cstdlib>
#include <regex>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "common/parse.hpp"

namespace tck::cli {

namespace {

bool is_srun(const std::string &arg) {
    auto slash = arg.rfind('/');
    return (slash == std::string::npos ? arg : arg.substr(slash + 1)) == "srun";
}

// srun's short options that take their value as the next word.
bool short_takes_value(char c) { return std::string_view("AbBcCdDeFGiJLmMnNopqrStTwWx").find(c) != std::string::npos; }

// srun's long options that take no value, or one only after '=' (srun(1)),
// and the plugin's --ckpt-mem (a bare one asks for the admin's default).
// Every other long option written without '=' takes the next word.
bool long_without_next_value(const std::string &name) {
    static const char *const kNames[] = {
        "--bcast",       "--compress",      "--contiguous", "--disable-status", "--exact",       "--exclusive",
        "--help",        "--immediate",     "--kill-on-bad-exit", "--label",    "--multi-prog",  "--nice",
        "--no-allocate", "--no-kill",       "--overcommit", "--overlap",        "--oversubscribe", "--preserve-env",
        "--propagate",   "--pty",           "--quiet",      "--quit-on-interrupt", "--reboot",   "--resv-ports",
        "--send-libs",   "--spread-job",    "--test-only",  "--unbuffered",     "--usage",       "--use-min-nodes",
        "--verbose",     "--version",       "--ckpt-mem"};
    for (const char *n : kNames) {
        if (name == n) return true;
    }
    return false;
}

// One of srun's options on its command line: srun[at] and, when it takes
// its value as the next word, srun[at + 1].
struct SrunOption {
    std::size_t at = 0;
    std::size_t words = 1;
    std::string name;   // "--ntasks", "-n"
    std::string value;  // "" when none
};

// srun's options before the program, in order; *program: where the program
// starts (srun.size() when there is none).
std::vector<SrunOption> srun_options(const std::vector<std::string> &srun, std::size_t *program) {
    std::vector<SrunOption> out;
    std::size_t k = 1;
    while (k < srun.size()) {
        const std::string &a = srun[k];
        if (a.size() < 2 || a[0] != '-') break;  // the program
        SrunOption o;
        o.at = k;
        if (a[1] == '-') {
            const std::size_t eq = a.find('=');
            o.name = a.substr(0, eq);
            if (eq != std::string::npos) {
                o.value = a.substr(eq + 1);
            } else if (!long_without_next_value(o.name) && k + 1 < srun.size()) {
                o.words = 2;
                o.value = srun[k + 1];
            }
        } else {
            o.name = a.substr(0, 2);
            if (a.size() > 2) {
                o.value = a.substr(2);
            } else if (short_takes_value(a[1]) && k + 1 < srun.size()) {
                o.words = 2;
                o.value = srun[k + 1];
            }
        }
        k += o.words;
        out.push_back(std::move(o));
    }
    if (program) *program = k;
    return out;
}

bool is_task_count(const SrunOption &o) { return o.name == "-n" || o.name == "--ntasks"; }
bool is_tasks_per_node(const SrunOption &o) { return o.name == "--ntasks-per-node" || o.name == "--tasks-per-node"; }

}  // namespace

Result<RunOptions> parse_run_args(const std::vector<std::string> &args) {
    RunOptions o;
    std::size_t i = 0;
    auto value = [&](const std::string &name, std::size_t &k, const std::string &arg) -> Result<std::string> {
        auto eq = arg.find('=');
        if (eq != std::string::npos) return arg.substr(eq + 1);
        if (k + 1 >= args.size()) return error(TIERCKPT_ERR_INVALID, "{} needs a value", name);
        return args[++k];
    };
    for (; i < args.size(); ++i) {
        const std::string &a = args[i];
        if (a == "--") {
            ++i;
            break;
        }
        auto named = [&](const char *name) { return a == name || a.rfind(std::string(name) + "=", 0) == 0; };
        if (named("--spares") || named("--max-restarts") || named("--probe-timeout") || named("--min-nodes")) {
            std::string name = a.substr(0, a.find('='));
            auto v = value(name, i, a);
            if (!v) return v.status();
            auto n = parse_uint(name, *v, 0, name == "--max-restarts" ? 1000 : 100000);
            if (!n) return n.status();
            if (name == "--spares") o.spares = static_cast<unsigned>(*n);
            else if (name == "--min-nodes" && *n == 0) return error(TIERCKPT_ERR_INVALID, "--min-nodes=0: give at least 1 node");
            else if (name == "--min-nodes") o.min_nodes = static_cast<unsigned>(*n);
            else if (name == "--max-restarts") o.max_restarts = static_cast<unsigned>(*n);
            else if (*n == 0) return error(TIERCKPT_ERR_INVALID, "--probe-timeout=0: give at least 1 second");
            else o.probe_timeout_s = static_cast<unsigned>(*n);
            continue;
        }
        if (is_srun(a)) break;  // "--" is optional before srun
        return error(TIERCKPT_ERR_INVALID, "unknown option '{}' (see tierckpt run --help)", a);
    }
    o.srun.assign(args.begin() + static_cast<long>(std::min(i, args.size())), args.end());
    if (o.srun.empty()) {
        return error(TIERCKPT_ERR_INVALID, "no command: give the step's srun line after --, e.g. "
                                           "tierckpt run --spares 1 -- srun --mpi=pmix ./train");
    }
    if (!is_srun(o.srun[0])) {
        return error(TIERCKPT_ERR_INVALID,
                     "'{}' is not srun: tierckpt run relaunches job steps, so give it an srun command line "
                     "(tierckpt run -- srun --mpi=pmix ./train)",
                     o.srun[0]);
    }
    // The srun options, up to the program: none may choose nodes.
    for (const SrunOption &opt : srun_options(o.srun, nullptr)) {
        std::string why;
        for (const char *name : {"--nodes", "--nodelist", "--exclude", "--relative", "--nodefile", "-N", "-w", "-x",
                                 "-r", "-F"}) {
            if (opt.name == name) why = name;
        }
        if (!why.empty()) {
            return error(TIERCKPT_ERR_INVALID,
                         "the srun command sets {}: leave the choice of nodes to tierckpt run (it runs the step on "
                         "the allocation's nodes but the last --spares, and replaces failed ones); size the "
                         "allocation with sbatch/salloc -N instead",
                         why);
        }
        if (is_task_count(opt) || is_tasks_per_node(opt)) {
            auto n = parse_uint(fmt::format("the srun line's {}", opt.name), opt.value, 1, 10000000);
            if (!n) return n.status();
            (is_task_count(opt) ? o.ntasks : o.ntasks_per_node) = static_cast<unsigned>(*n);
        }
    }
    return o;
}

std::vector<std::string> srun_command(const RunOptions &o, const std::vector<std::string> &nodes, bool relaunch,
                                      std::optional<std::size_t> ntasks) {
    std::vector<std::string> cmd{o.srun[0], "--nodes=" + std::to_string(nodes.size()),
                                 "--nodelist=" + join_nodes(nodes),
                                 // One dead task ends the step: the rest would wait for it.
                                 "--kill-on-bad-exit=1"};
    // The failed step's CPUs stay booked in Slurm until the controller
    // declares the dead node down (SlurmdTimeout); without --overlap the new
    // step would wait for that.
    if (relaunch) cmd.push_back("--overlap");
    if (!ntasks) {
        cmd.insert(cmd.end(), o.srun.begin() + 1, o.srun.end());
        return cmd;
    }
    // Another task count: ours, the line's own left out (srun takes the
    // last one given).
    cmd.push_back("--ntasks=" + std::to_string(*ntasks));
    std::size_t program = 0;
    for (const SrunOption &opt : srun_options(o.srun, &program)) {
        if (is_task_count(opt)) continue;
        cmd.insert(cmd.end(), o.srun.begin() + static_cast<long>(opt.at),
                   o.srun.begin() + static_cast<long>(opt.at + opt.words));
    }
    cmd.insert(cmd.end(), o.srun.begin() + static_cast<long>(program), o.srun.end());
    return cmd;
}

Result<std::size_t> relaunch_tasks(const RunOptions &o, std::size_t first_nodes, std::size_t first_ranks,
                                   std::size_t nodes) {
    if (first_ranks) {
        if (first_nodes == 0 || first_ranks % first_nodes != 0) {
            return error(TIERCKPT_ERR_INVALID,
                         "the first attempt ran {} ranks on {} nodes, not as many on every node, so a step on {} "
                         "nodes has no task count: give srun --ntasks-per-node",
                         first_ranks, first_nodes, nodes);
        }
        return first_ranks / first_nodes * nodes;
    }
    if (o.ntasks) return o.ntasks / first_nodes * nodes;  // even: check_min_nodes
    if (o.ntasks_per_node) return std::size_t{o.ntasks_per_node} * nodes;
    if (o.env_ntasks) {
        if (o.env_ntasks % first_nodes != 0) {
            return error(TIERCKPT_ERR_INVALID,
                         "the allocation's {} tasks (SLURM_NTASKS) do not spread evenly over the first attempt's {} "
                         "nodes, so a step on {} nodes has no task count: give srun --ntasks-per-node",
                         o.env_ntasks, first_nodes, nodes);
        }
        return o.env_ntasks / first_nodes * nodes;
    }
    return nodes;  // srun's default: one a node
}

Status check_min_nodes(const RunOptions &o, std::size_t first_nodes) {
    if (!o.min_nodes) return Status::ok();
    if (o.min_nodes > first_nodes) {
        return error(TIERCKPT_ERR_INVALID,
                     "--min-nodes={} is more than the step's {} node(s): give at most {} (the allocation's nodes "
                     "but the spares)",
                     o.min_nodes, first_nodes, first_nodes);
    }
    if (o.ntasks && o.ntasks % first_nodes != 0) {
        return error(TIERCKPT_ERR_INVALID,
                     "--min-nodes: the srun line's {} tasks do not spread evenly over the step's {} nodes, so the "
                     "task count of a step on fewer nodes is not known: give --ntasks-per-node instead of -n",
                     o.ntasks, first_nodes);
    }
    return Status::ok();
}

std::vector<std::string> warmup_command(const RunOptions &o, const std::vector<std::string> &spares) {
    if (spares.empty() || o.srun.empty()) return {};
    const std::string n = std::to_string(spares.size());
    std::vector<std::string> cmd{o.srun[0],          "--overlap",          "--nodes=" + n,
                                 "--ntasks=" + n,    "--ntasks-per-node=1", "--nodelist=" + join_nodes(spares),
                                 "--job-name=tierckpt-warmup"};
    // The plugin's options, with their values.
    for (const SrunOption &opt : srun_options(o.srun, nullptr)) {
        for (const char *name : {"--ckpt-mem", "--ckpt-replicas", "--ckpt-transport", "--ckpt-persist",
                                 "--ckpt-persist-every", "--ckpt-persist-keep"}) {
            if (opt.name != name) continue;
            cmd.insert(cmd.end(), o.srun.begin() + static_cast<long>(opt.at),
                       o.srun.begin() + static_cast<long>(opt.at + opt.words));
        }
    }
    cmd.emplace_back("true");
    return cmd;
}

Result<std::vector<std::string>> next_nodes(const std::vector<std::string> &current,
                                            const std::vector<std::string> &spares,
                                            const std::vector<std::string> &failed, unsigned min_nodes) {
    std::set<std::string> bad(failed.begin(), failed.end());
    std::vector<std::string> out;
    for (const auto &n : current) {
        if (!bad.count(n)) out.push_back(n);
    }
    for (const auto &n : spares) {
        if (out.size() == current.size()) break;
        if (!bad.count(n) && std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
    }
    if (out.size() < current.size() && !(min_nodes && out.size() >= min_nodes)) {
        if (min_nodes) {
            return error(TIERCKPT_ERR_PEER,
                         "not enough healthy nodes: {} are left ({} failed: {}), fewer than --min-nodes={}; allocate "
                         "more nodes or spares (sbatch -N, tierckpt run --spares)",
                         out.size(), failed.size(), join_nodes(failed), min_nodes);
        }
        return error(TIERCKPT_ERR_PEER,
                     "not enough healthy nodes: the step needs {}, {} are left ({} failed: {}); allocate more spare "
                     "nodes (sbatch -N, tierckpt run --spares), or let the step go on with fewer (tierckpt run "
                     "--min-nodes, for programs whose checkpoints restore on another number of ranks)",
                     current.size(), out.size(), failed.size(), join_nodes(failed));
    }
    return out;
}

std::vector<std::string> unusable_nodes(const std::string &sinfo_output) {
    std::vector<std::string> out;
    std::istringstream in(sinfo_output);
    std::string node, state;
    while (in >> node >> state) {
        bool bad = state.find('*') != std::string::npos;  // not responding
        for (const char *word : {"down", "drain", "fail", "maint", "reboot", "future", "unknown"}) {
            bad = bad || state.find(word) != std::string::npos;
        }
        if (bad && std::find(out.begin(), out.end(), node) == out.end()) out.push_back(node);
    }
    return out;
}

std::optional<PeerLost> parse_peer_lost(const std::string &line) {
    static const std::regex re(R"(peer rank \d+ on (\S+) silent for ([0-9.]+) s)");
    std::smatch m;
    if (!std::regex_search(line, m, re)) return std::nullopt;
    return PeerLost{m[1].str(), std::stod(m[2]), line.find("heartbeat port is closed") != std::string::npos};
}

std::optional<std::string> parse_node_failure(const std::string &line) {
    static const std::regex re(R"(Node failure on (\S+))");
    std::smatch m;
    if (!std::regex_search(line, m, re)) return std::nullopt;
    return m[1].str();
}

bool is_step_failure_line(const std::string &line) {
    static const std::regex re(R"(srun: error: (\S+: tasks? [0-9,-]+: (Exited with exit code [1-9]|Killed|Terminated)|Node failure on))");
    return std::regex_search(line, re);
}

std::string join_nodes(const std::vector<std::string> &nodes) {
    std::string s;
    for (const auto &n : nodes) s += (s.empty() ? "" : ",") + n;
    return s;
}

}  // namespace tck::cli
