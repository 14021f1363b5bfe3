// The tierckpt command. Subcommands are added as the tiers land; each one
// documents itself in --help and in tierckpt(1).
#include "config.h"

#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "run.hpp"
#include "store_cmds.hpp"
#include "tierckpt/tierckpt.h"

namespace {

constexpr const char *kUsage = R"(Usage: tierckpt COMMAND [ARGS...]
       tierckpt --help | --version

Managed tiered checkpointing for Slurm clusters.

Commands:
  ls [--json] [STORE|DIR]...      list what node stores hold (default: $TIERCKPT_STORE)
  verify [--json] [STORE|DIR]...  re-check every shard's checksum; exit 1 if one is corrupt
                                  (DIR: a store directory or a persistent directory)
  flush [--dir D] [--keep K] [STORE]
                                  write the store's newest committed version to the
                                  persistent directory if it is newer than what is there
  run [OPTIONS] -- srun ...       run a job step; relaunch it on spare nodes when a node fails
  plan [OPTIONS]                  size a model's checkpoints, --ckpt-mem and the checkpoint
                                  interval before a run
  info                            show the version and which parts this build has
  help                            show this help

Options:
  -h, --help     show this help and exit
  -V, --version  show the version and exit

See tierckpt(1) and tierckpt(7).
)";

int cmd_info() {
    const char *features = tierckpt_features();
    fmt::print("tierckpt {}\n", tierckpt_version());
    fmt::print("features: {}\n", *features ? features : "(none)");
    return 0;
}

}  // namespace

namespace {
int dispatch(int argc, char **argv);
}  // namespace

// Admins run this as root on users' stores and directories: whatever those
// hold, the command ends with a message and a status, never an uncaught
// exception (the parsers are bounded; this is the last line).
int main(int argc, char **argv) {
    try {
        return dispatch(argc, argv);
    } catch (const std::exception &e) {
        fmt::print(stderr, "tierckpt: {}\n", e.what());
    } catch (...) {
        fmt::print(stderr, "tierckpt: unexpected error\n");
    }
    return 1;
}

namespace {

int dispatch(int argc, char **argv) {
    if (argc < 2) {
        std::fputs(kUsage, stderr);
        return 2;
    }
    std::string_view cmd = argv[1];
    if (cmd == "-h" || cmd == "--help" || cmd == "help") {
        std::fputs(kUsage, stdout);
        return 0;
    }
    if (cmd == "-V" || cmd == "--version") {
        fmt::print("tierckpt {}\n", tierckpt_version());
        return 0;
    }
    if (cmd == "ls" || cmd == "verify") {
        return tck::cli::cmd_store(std::vector<std::string>(argv + 2, argv + argc), cmd == "verify");
    }
    if (cmd == "flush") return tck::cli::cmd_flush(std::vector<std::string>(argv + 2, argv + argc));
    if (cmd == "run") return tck::cli::cmd_run(std::vector<std::string>(argv + 2, argv + argc));
    if (cmd == "plan") return tck::cli::cmd_plan(std::vector<std::string>(argv + 2, argv + argc));
    if (cmd == "info") {
        if (argc != 2) {
            fmt::print(stderr, "tierckpt info: takes no arguments\n");
            return 2;
        }
        return cmd_info();
    }
    fmt::print(stderr, "tierckpt: unknown command '{}'; run 'tierckpt --help' for the list of commands\n", cmd);
    return 2;
}

}  // namespace
