#include "run_plan.hpp"

#include <algorithm>
#include <cstdlib>
#include <regex>
#include <set>
#include <sstream>

#include "common/parse.hpp"

namespace tck::cli {

namespace {

bool is_srun(const std::string &arg) {
    auto slash = arg.rfind('/');
    return (slash == std::string::npos ? arg : arg.substr(slash + 1)) == "srun";
}

// srun's short options that take their value as the next word.
bool short_takes_value(char c) { return std::string_view("AbBcCdDeFGiJLmMnNopqrStTwWx").find(c) != std::string::npos; }

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
    for (std::size_t k = 1; k < o.srun.size(); ++k) {
        const std::string &a = o.srun[k];
        if (a.size() < 2 || a[0] != '-') break;  // the program
        std::string why;
        auto named = [&](const char *name) { return a == name || a.rfind(std::string(name) + "=", 0) == 0; };
        for (const char *name : {"--nodes", "--nodelist", "--exclude", "--relative", "--nodefile"}) {
            if (named(name)) why = name;
        }
        std::string count, per_node;  // from -n N, -nN, --ntasks[=]N; --ntasks-per-node[=]P
        for (auto [name, into] : {std::pair{"--ntasks", &count}, std::pair{"--ntasks-per-node", &per_node}}) {
            if (!named(name)) continue;
            if (a.find('=') != std::string::npos) *into = a.substr(a.find('=') + 1);
            else if (k + 1 < o.srun.size()) *into = o.srun[++k];
        }
        if (!per_node.empty()) {
            auto n = parse_uint("the srun line's --ntasks-per-node", per_node, 1, 100000);
            if (!n) return n.status();
            o.ntasks_per_node = static_cast<unsigned>(*n);
        }
        if (a[1] != '-') {
            if (std::string_view("NwxrF").find(a[1]) != std::string_view::npos) why = a.substr(0, 2);
            else if (a[1] == 'n' && a.size() > 2) count = a.substr(2);
            else if (a.size() == 2 && short_takes_value(a[1]) && k + 1 < o.srun.size()) {
                if (a[1] == 'n') count = o.srun[k + 1];
                ++k;  // skip its value
            }
        }
        if (!count.empty()) {
            auto n = parse_uint("the srun line's task count", count, 1, 10000000);
            if (!n) return n.status();
            o.ntasks = static_cast<unsigned>(*n);
        }
        if (!why.empty()) {
            return error(TIERCKPT_ERR_INVALID,
                         "the srun command sets {}: leave the choice of nodes to tierckpt run (it runs the step on "
                         "the allocation's nodes but the last --spares, and replaces failed ones); size the "
                         "allocation with sbatch/salloc -N instead",
                         why);
        }
    }
    return o;
}

std::vector<std::string> srun_command(const RunOptions &o, const std::vector<std::string> &nodes, bool relaunch,
                                      std::size_t first_nodes) {
    std::vector<std::string> cmd{o.srun[0], "--nodes=" + std::to_string(nodes.size()),
                                 "--nodelist=" + join_nodes(nodes),
                                 // One dead task ends the step: the rest would wait for it.
                                 "--kill-on-bad-exit=1"};
    // The failed step's CPUs stay booked in Slurm until the controller
    // declares the dead node down (SlurmdTimeout); without --overlap the new
    // step would wait for that.
    if (relaunch) cmd.push_back("--overlap");
    if (!first_nodes || nodes.size() == first_nodes) {
        cmd.insert(cmd.end(), o.srun.begin() + 1, o.srun.end());
        return cmd;
    }
    // Fewer nodes: as many tasks a node as the first step had
    // (check_min_nodes made sure they divide evenly; with no count at all,
    // srun ran one a node).
    const std::size_t per_node = o.ntasks_per_node ? o.ntasks_per_node : o.ntasks ? o.ntasks / first_nodes : 1;
    cmd.push_back("--ntasks=" + std::to_string(per_node * nodes.size()));
    std::size_t k = 1;
    for (; k < o.srun.size(); ++k) {
        const std::string &a = o.srun[k];
        if (a.size() < 2 || a[0] != '-') break;  // the program
        if (a == "--ntasks" || (a == "-n")) {
            ++k;  // and its value
            continue;
        }
        if (a.rfind("--ntasks=", 0) == 0 || (a[1] == 'n' && a.size() > 2)) continue;
        cmd.push_back(a);
        if (a[1] != '-' && a.size() == 2 && short_takes_value(a[1]) && k + 1 < o.srun.size()) cmd.push_back(o.srun[++k]);
    }
    cmd.insert(cmd.end(), o.srun.begin() + static_cast<long>(std::min(k, o.srun.size())), o.srun.end());
    return cmd;
}

Status check_min_nodes(const RunOptions &o, std::size_t first_nodes) {
    if (!o.min_nodes) return Status::ok();
    if (o.min_nodes > first_nodes) {
        return error(TIERCKPT_ERR_INVALID,
                     "--min-nodes={} is more than the step's {} node(s): give at most {} (the allocation's nodes "
                     "but the spares)",
                     o.min_nodes, first_nodes, first_nodes);
    }
    if (o.ntasks && !o.ntasks_per_node && o.ntasks % first_nodes != 0) {
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
    // The plugin's options: --ckpt-mem takes its value only after '=' (a
    // bare one asks for the admin's default); the others take the next word
    // when they have no '='.
    for (std::size_t k = 1; k < o.srun.size(); ++k) {
        const std::string &a = o.srun[k];
        if (a.size() < 2 || a[0] != '-') break;  // the program
        if (a[1] != '-') {
            if (a.size() == 2 && short_takes_value(a[1])) ++k;
            continue;
        }
        const std::string name = a.substr(0, a.find('='));
        for (const char *opt : {"--ckpt-mem", "--ckpt-replicas", "--ckpt-transport", "--ckpt-persist",
                                "--ckpt-persist-every", "--ckpt-persist-keep"}) {
            if (name != opt) continue;
            cmd.push_back(a);
            if (a.find('=') == std::string::npos && name != "--ckpt-mem" && k + 1 < o.srun.size()) {
                cmd.push_back(o.srun[++k]);
            }
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
    return PeerLost{m[1].str(), std::stod(m[2])};
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
