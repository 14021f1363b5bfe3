// tierckpt run: the job-step orchestrator (see run.cpp and tierckpt(1)).
#pragma once

#include <string>
#include <vector>

namespace tck::cli {

// args: what follows "tierckpt run". Returns the exit status.
int cmd_run(const std::vector<std::string> &args);

}  // namespace tck::cli
