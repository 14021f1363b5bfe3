// tierckpt ls / tierckpt verify.
#pragma once

#include <string>
#include <vector>

namespace tck::cli {
// Returns the exit status: 0, 1 (a store unreadable or, for verify, a
// shard corrupt), 2 (usage).
int cmd_store(const std::vector<std::string> &args, bool verify);
}  // namespace tck::cli
