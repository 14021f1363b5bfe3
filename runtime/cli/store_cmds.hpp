// tierckpt ls / tierckpt verify.
#pragma once

#include <string>
#include <vector>

namespace tck::cli {
// s as a JSON string literal, quotes included.
std::string json_string(const std::string &s);
// Returns the exit status: 0, 1 (a store unreadable or, for verify, a
// shard corrupt), 2 (usage).
int cmd_store(const std::vector<std::string> &args, bool verify);

// persist_cmds.cpp: the persistent tier.
bool looks_persistent(const std::string &path);  // a directory with version directories
int cmd_persist_ls(const std::vector<std::string> &paths, bool verify, bool json);
// tierckpt flush [--dir DIR] [--keep K] [STORE]: 0, 1 (failed), 2 (usage).
int cmd_flush(const std::vector<std::string> &args);
// tierckpt plan: a job's checkpoint sizes, --ckpt-mem, costs and schedule (plan_cmd.cpp).
int cmd_plan(const std::vector<std::string> &args);
}  // namespace tck::cli
