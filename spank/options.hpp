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

enum class Opt : int {
    mem = 1,
    replicas,
    persist,
    persist_every,
    transport,
    persist_keep,
    ckpt_interval,
    node_mtbf,
    max_overhead,
    min_nodes,
};

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
    // The automatic checkpoint schedule (the runtime's due()), already in
    // the form the tasks get it: see Settings.
    std::optional<std::string> ckpt_interval;
    std::optional<std::string> node_mtbf;
    std::optional<std::string> max_overhead;
    // --ckpt-min-nodes: read by tierckpt-epilog-slurmctld from the job's
    // SPANK_ variables (a requeued job may start on as few nodes); checked
    // here so that a bad value fails at sbatch time.
    std::optional<std::uint32_t> min_nodes;
};

// What the job gets once defaults are applied.
struct Settings {
    SizeSpec mem;
    unsigned replicas = 1;
    std::string persist_dir;          // empty: no persistent tier
    std::uint64_t persist_every = 0;  // 0 when persist_dir is empty
    bool persist_every_auto = false;  // --ckpt-persist-every=auto: TIERCKPT_PERSIST_EVERY=auto
    std::uint32_t persist_keep = 0;   // 0 when persist_dir is empty
    std::string transport = "auto";   // ucx, ofi or auto
    // The schedule's TIERCKPT_* values, normalized so that the runtime reads
    // plain numbers whatever form the user typed; empty: the plugin does not
    // set the variable, so one the user exported reaches the tasks, and
    // without one the runtime's default holds (tierckpt(7)).
    std::string ckpt_interval;  // TIERCKPT_CKPT_INTERVAL: "auto", steps ("50") or seconds ("600s")
    std::string node_mtbf;      // TIERCKPT_NODE_MTBF: seconds ("22809600") or "inf"
    std::string max_overhead;   // TIERCKPT_MAX_OVERHEAD: a percentage ("2")
    // node_mtbf is the admin's node_mtbf (no --ckpt-node-mtbf): a default,
    // so a TIERCKPT_NODE_MTBF the user exported wins over it.
    bool node_mtbf_from_admin = false;
};

inline constexpr std::uint64_t kDefaultPersistEvery = defaults::kPersistEvery;
// UserOptions::persist_every for --ckpt-persist-every=auto.
inline constexpr std::uint64_t kPersistEveryAuto = 0;
inline constexpr std::uint32_t kDefaultPersistKeep = defaults::kPersistKeep;

// A number of seconds (or a percentage) as the tasks get it: the shortest
// decimal that reads back exactly ("600", "1.5"; "1e+20" only far beyond
// any real value); "inf" for +infinity.
std::string plain_number(double v);

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
