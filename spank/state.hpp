// What one process of the plugin knows. Each context (srun, sbatch,
// slurmstepd, the prolog/epilog) is its own process: nothing is shared.
#pragma once

#include <functional>
#include <optional>
#include <string>

extern "C" {
#include <slurm/spank.h>
}

#include "config.hpp"
#include "options.hpp"
#include "store.hpp"

namespace tck::spank {

// What a failing callback returns. Slurm 22.05 treats only negative values
// as failure: a callback returning ESPANK_ERROR (3000) is logged as failed
// and srun goes on, exit 0 (measured on the test cluster).
inline constexpr int kCallbackFailed = -1;

std::string node_host_name();

struct PluginState {
    Config cfg;
    Status cfg_status;        // a bad plugstack.conf: the plugin refuses to work
    UserOptions opts;
    Status opt_status;        // a bad option seen in slurmstepd
    std::optional<StoreInfo> store;
    Status remote_error;      // why this step has no store; reported by task_init
    // The node's name (remote.cpp: the kernel's host name, short form); a
    // seam for the unit tests, which play several nodes in one process.
    std::function<std::string()> host_name = &node_host_name;
};

PluginState &state();

// slurmstepd (remote.cpp)
std::string node_host_name();
int remote_init_post_opt(spank_t sp);
int remote_task_init_privileged(spank_t sp);
int remote_task_init(spank_t sp);

// job prolog/epilog (job_script.cpp)
int job_prolog(spank_t sp);
int job_epilog(spank_t sp);

// The options table, shared with job_script.cpp for spank_option_getopt.
spank_option *option_table();
int option_count();

}  // namespace tck::spank
