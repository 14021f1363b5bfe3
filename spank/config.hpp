// The plugin's plugstack.conf arguments. Parsed again in every context:
// srun, slurmstepd and the job prolog/epilog share no memory.
#pragma once

#include <string_view>
#include <vector>

#include "../runtime/common/log.hpp"
#include "../runtime/common/status.hpp"

namespace tck::spank {

struct Config {
    tck::log::Level log_level = tck::log::Level::warn;  // log=
};

tck::Result<Config> parse_config(const std::vector<std::string_view> &args);

}  // namespace tck::spank
