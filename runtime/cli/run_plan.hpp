// tierckpt run's decisions, kept apart from processes so they are unit
// tested: reading its own command line and the srun command it wraps,
// choosing the nodes of each attempt, and reading what the step prints.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.hpp"

namespace tck::cli {

struct RunOptions {
    unsigned spares = 0;        // nodes of the allocation kept out of the first step
    unsigned max_restarts = 3;  // relaunches before giving up
    unsigned probe_timeout_s = 5;   // a node that does not run `true` in this time has failed
    std::vector<std::string> srun;  // the srun command line, srun first
    // --min-nodes: with no spare left, relaunch on the survivors while at
    // least this many remain (0: never with fewer nodes than the first step).
    unsigned min_nodes = 0;
    // The srun line's task count (-n, --ntasks; 0: none given), its
    // --ntasks-per-node (or --tasks-per-node; 0: none), and the
    // allocation's SLURM_NTASKS (which srun takes when its line has no
    // count; 0: unset): what relaunch_tasks falls back on.
    unsigned ntasks = 0;
    unsigned ntasks_per_node = 0;
    unsigned env_ntasks = 0;
};

// `tierckpt run [OPTIONS] -- srun ...`. Refuses an srun line that picks
// nodes itself (-N, -w, -x, -r, -F): tierckpt run chooses them.
Result<RunOptions> parse_run_args(const std::vector<std::string> &args);

// The srun command of one attempt: ours first (after srun), then the user's.
// ntasks: the task count of a step on another number of nodes than the
// first (relaunch_tasks), given as --ntasks in place of the line's -n.
std::vector<std::string> srun_command(const RunOptions &o, const std::vector<std::string> &nodes, bool relaunch,
                                      std::optional<std::size_t> ntasks = std::nullopt);

// The task count of a step on `nodes` nodes: as many a node as the first
// attempt had. first_ranks: the ranks the first attempt ran (from its run
// report; 0: unknown), else the line's -n, its --ntasks-per-node, the
// allocation's SLURM_NTASKS, or one a node. An error with the fix when
// the first attempt's tasks do not spread evenly.
Result<std::size_t> relaunch_tasks(const RunOptions &o, std::size_t first_nodes, std::size_t first_ranks,
                                   std::size_t nodes);

// Whether --min-nodes fits the first step of first_nodes nodes: K at most
// first_nodes, and the line's task count (-n) spreading evenly over them
// (else the tasks per node of a smaller step are not known). An error with
// the fix.
Status check_min_nodes(const RunOptions &o, std::size_t first_nodes);

// The step that prepares the spares' node stores before any failure: one
// task of `true` per spare (srun --overlap), with the --ckpt-* options of the
// user's srun line (those before the program), so that a relaunch onto a
// spare finds its store made and its memory touched instead of doing that
// while the job waits. Empty without spares.
std::vector<std::string> warmup_command(const RunOptions &o, const std::vector<std::string> &spares);

// The nodes of the next attempt: the current ones without the failed ones,
// topped up from the spares (in allocation order) that have not failed;
// with too few spares, the survivors alone when at least min_nodes (> 0)
// are left. An error when too few are left.
Result<std::vector<std::string>> next_nodes(const std::vector<std::string> &current,
                                            const std::vector<std::string> &spares,
                                            const std::vector<std::string> &failed, unsigned min_nodes = 0);

// From `sinfo -h -N -o '%N %T'`: nodes Slurm calls unusable (down, drained,
// failing, not responding).
std::vector<std::string> unusable_nodes(const std::string &sinfo_output);

// The runtime's "peer rank P on NODE silent for S s" line (gone: it adds that
// the peer's heartbeat port answered "closed", its process having ended).
struct PeerLost {
    std::string node;
    double silent_s = 0;
    bool gone = false;
};
std::optional<PeerLost> parse_peer_lost(const std::string &line);
// srun's "Node failure on NODE": NODE.
std::optional<std::string> parse_node_failure(const std::string &line);
// srun's lines that say the step is failing ("srun: error: n1: task 0: Exited
// with exit code 75", "... Killed", "Node failure on ...").
bool is_step_failure_line(const std::string &line);

// "n1,n3,n4".
std::string join_nodes(const std::vector<std::string> &nodes);

}  // namespace tck::cli
