// A stand-in for the SPANK API that Slurm provides to the plugin at run
// time, so that the plugin's callbacks can be driven from unit tests. It is
// not a mock of our code: the plugin under test is the real one.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

extern "C" {
#include <slurm/spank.h>
}

namespace spank_stub {

struct World {
    spank_context_t context = S_CTX_REMOTE;
    std::uint32_t job_id = 1, step_id = 0;
    std::uint32_t uid = 0, gid = 0;
    int task_id = 0;
    std::uint32_t restart_count = 0;  // S_SLURM_RESTART_COUNT
    std::map<std::string, std::string> job_env;  // spank_getenv/spank_setenv
    std::vector<spank_option> options;           // what the plugin registered
    std::vector<std::string> errors, infos;      // slurm_error / slurm_info lines
};

World &world();
void reset();
spank_t handle();  // a non-null handle to pass to the callbacks

// Calls the callback of the registered option `name` as Slurm would.
int give_option(const std::string &name, const char *optarg, bool remote);

}  // namespace spank_stub
