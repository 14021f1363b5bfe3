// The plugin's plugstack.conf arguments (admin settings). Parsed again in
// every context: srun, sbatch, slurmstepd and the job prolog/epilog share
// no memory. See spank-tierckpt(8) for the meaning of each key.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/log.hpp"
#include "common/size.hpp"
#include "common/status.hpp"

namespace tck::spank {

struct Config {
    std::string store_dir = "/dev/shm/tierckpt";   // store_dir=
    SizeSpec max_mem = percent(50);                 // max_mem=: hard cap per node
    SizeSpec default_mem = percent(10);             // default_mem=: size for a bare --ckpt-mem
    unsigned default_replicas = 1;                  // default_replicas=
    std::vector<std::string> persist_dirs;          // persist_dirs=a:b; empty: any absolute path
    struct Domain {
        std::string name;
        std::string hosts;     // a Slurm host list: n[1-4],gpu07
        std::size_t line = 0;  // its line in topology.conf; 0: from plugstack.conf
    };
    std::vector<Domain> failure_domains;            // failure_domains=rackA:n[1-4];rackB:n[5-8]
    // failure_domains=topology: the leaf switches (or blocks) of Slurm's
    // topology.conf, read in slurmstepd (topology.hpp), not here.
    bool topology_domains = false;
    std::string topology_conf;                      // topology_conf=: empty: beside slurm.conf
    std::uint64_t keep_seconds = 600;               // keep_seconds=: grace after a failed job
    std::uint64_t flush_seconds = 600;              // flush_seconds=: the epilog's flush; 0: none
    bool prefault = true;                           // prefault=
    // node_mtbf=: a node's mean time between failures in seconds (+inf: no
    // failures expected), the tasks' TIERCKPT_NODE_MTBF when the user gives
    // no --ckpt-node-mtbf. Unset: the variable is not set, and the runtime
    // takes its own default (defaults::kNodeMtbfS).
    std::optional<double> node_mtbf_s;
    tck::log::Level log_level = tck::log::Level::warn;  // log=

    static SizeSpec percent(double p) {
        SizeSpec s;
        s.is_percent = true;
        s.percent = p;
        return s;
    }
};

// Limits that are part of the interface (documented in spank-tierckpt(8)).
inline constexpr unsigned kMaxReplicas = 16;
inline constexpr std::uint64_t kMaxKeepSeconds = 7 * 24 * 3600;
inline constexpr std::uint64_t kMaxPersistEvery = 1000000;
inline constexpr std::uint32_t kMaxPersistKeep = 1000;
// --ckpt-min-nodes: at most this many (the failover scripts read up to 6 digits).
inline constexpr std::uint32_t kMaxMinNodes = 100000;
inline constexpr std::uint64_t kMaxFlushSeconds = 24 * 3600;

// A node MTBF as node_mtbf= and --ckpt-node-mtbf take it: a duration
// above 0 (30d, 3h, 90m, 1000s; no suffix: seconds), or inf. `what` names
// it in the message ("node_mtbf", "--ckpt-node-mtbf").
tck::Result<double> parse_node_mtbf(std::string_view what, std::string_view text);

tck::Result<Config> parse_config(const std::vector<std::string_view> &args);

// Whether a Slurm host list ("n[1-4,7],gpu[01-16]", one bracket group per
// name) names host. An error for a malformed list.
tck::Result<bool> hostlist_contains(std::string_view hosts, std::string_view host);

// The failure domain of host among plugstack.conf's failure_domains (""
// when no domain names it). failure_domains=topology: see topology.hpp.
std::string failure_domain_of(const Config &cfg, std::string_view host);

// Whether name is a valid failure domain name: 1 to 64 letters, digits,
// '_', '.' and '-' (it travels in TIERCKPT_FAILURE_DOMAIN).
bool valid_domain_name(std::string_view name);

// "max_mem=50%" or "max_mem=64 GiB", for messages.
std::string describe(const SizeSpec &spec);

}  // namespace tck::spank
