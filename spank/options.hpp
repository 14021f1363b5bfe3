// The user's --ckpt-* options (srun, sbatch, salloc): parsing and checks.
// Pure functions: the SPANK callbacks in plugin.cpp only call these.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/defaults.hpp"
#include "common/size.hpp"
#include "common/status.hpp"
#include "config.hpp"

namespace tck::spank {

enum class Opt : int { mem = 1, replicas, persist, persist_every, transport, persist_keep };

// Starts unset: callbacks may run more than once (options from the
// environment, then the command line; twice in slurmstepd), and a later
// value replaces an earlier one.
struct UserOptions {
    bool enabled = false;                 // --ckpt-mem was given: tierckpt is on
    std::optional<SizeSpec> mem;          // unset: bare --ckpt-mem, the admin's default_mem
    std::optional<unsigned> replicas;
    std::optional<std::string> persist_dir;
    std::optional<std::uint64_t> persist_every;
    std::optional<std::string> transport;
    std::optional<std::uint32_t> persist_keep;
};

// What the job gets once defaults are applied.
struct Settings {
    SizeSpec mem;
    unsigned replicas = 1;
    std::string persist_dir;          // empty: no persistent tier
    std::uint64_t persist_every = 0;  // 0 when persist_dir is empty
    std::uint32_t persist_keep = 0;   // 0 when persist_dir is empty
    std::string transport = "auto";   // ucx, ofi or auto
};

inline constexpr std::uint64_t kDefaultPersistEvery = defaults::kPersistEvery;
inline constexpr std::uint32_t kDefaultPersistKeep = defaults::kPersistKeep;

// Parses one option's argument into opts. optarg may be null for a bare
// --ckpt-mem. The message names the option, the bad value and the form.
Status apply_option(Opt opt, const char *optarg, const Config &cfg, UserOptions &opts);

// Checks that need all options (e.g. --ckpt-persist-every without
// --ckpt-persist) and the cap where it can be decided without knowing a
// node's memory; applies the defaults.
Result<Settings> settle(const UserOptions &opts, const Config &cfg);

// The store size on a node with node_mem bytes of memory, or why the
// request cannot be met there (over the admin's cap, or zero).
Result<std::uint64_t> store_bytes(const Settings &s, const Config &cfg, std::uint64_t node_mem);

}  // namespace tck::spank
