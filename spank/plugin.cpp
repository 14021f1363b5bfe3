// spank_tierckpt.so: the SPANK entry points. This file only dispatches;
// no exception may cross a callback, and no callback may crash or hang
// slurmd or slurmstepd.
extern "C" {
#include <slurm/spank.h>
}

#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "config.hpp"

extern "C" {
// The symbols Slurm looks for. plugin_name is also the prefix of the
// SPANK__SLURM_SPANK_OPTION_tierckpt_* variables.
extern const char plugin_name[] = "tierckpt";
extern const char plugin_type[] = "spank";
extern const unsigned int plugin_version = SLURM_VERSION_NUMBER;
// Newer Slurm versions also read spank_plugin_version.
extern const unsigned int spank_plugin_version = SLURM_VERSION_NUMBER;
}

namespace {

void slurm_sink(tck::log::Level level, std::string_view line) {
    std::string msg(line);
    switch (level) {
    case tck::log::Level::error: slurm_error("tierckpt: %s", msg.c_str()); break;
    case tck::log::Level::warn: slurm_info("tierckpt: warning: %s", msg.c_str()); break;
    case tck::log::Level::info: slurm_info("tierckpt: %s", msg.c_str()); break;
    case tck::log::Level::debug: slurm_debug("tierckpt: %s", msg.c_str()); break;
    }
}

const char *context_name(spank_context_t ctx) {
    switch (ctx) {
    case S_CTX_LOCAL: return "srun";
    case S_CTX_REMOTE: return "slurmstepd";
    case S_CTX_ALLOCATOR: return "allocator";
    case S_CTX_SLURMD: return "slurmd";
    case S_CTX_JOB_SCRIPT: return "job script";
    default: return "unknown context";
    }
}

}  // namespace

extern "C" int slurm_spank_init(spank_t, int ac, char **av) {
    try {
        tck::log::set_sink(&slurm_sink);
        std::vector<std::string_view> args(av, av + ac);
        auto cfg = tck::spank::parse_config(args);
        if (!cfg) {
            tck::log::error("plugstack.conf: {}", cfg.status().message());
            return ESPANK_ERROR;
        }
        tck::log::set_level(cfg->log_level);
        tck::log::debug("init in {} context", context_name(spank_context()));
        return ESPANK_SUCCESS;
    } catch (const std::exception &e) {
        slurm_error("tierckpt: init: %s", e.what());
    } catch (...) {
        slurm_error("tierckpt: init: unknown exception");
    }
    return ESPANK_ERROR;
}
