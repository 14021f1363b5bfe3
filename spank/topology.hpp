// failure_domains=topology: the failure domains of Slurm's topology.conf,
// each node's leaf switch (topology/tree: SwitchName=X Nodes=HOSTLIST) or
// block (topology/block: BlockName=X Nodes=HOSTLIST). Upper-level switches
// (SwitchName=X Switches=...) are not domains. Read in slurmstepd, where the
// plugin needs its node's domain; srun, sbatch and the login node never read
// the file (a login node may lack it, e.g. in configless mode).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config.hpp"

namespace tck::spank {

// A larger topology.conf is refused (a cluster of 100,000 nodes needs well
// under 1 MiB).
inline constexpr std::uint64_t kMaxTopologyBytes = 16ull << 20;

// slurm.conf where slurmstepd's environment has no SLURM_CONF: Slurm's
// default sysconfdir (Debian's too). slurmd sets SLURM_CONF for every
// slurmstepd it starts (its -f file, or the configless cache), so this is
// a fallback only; other layouts can name the file with topology_conf=.
inline constexpr const char *kDefaultSlurmConf = "/etc/slurm/slurm.conf";

// The leaf domains of topology.conf's text, in file order, each with its
// line number. Slurm's syntax (topology.conf(5), parse_config.c): keys are
// case-insensitive, "#" starts a comment (unless escaped as "\#"), an odd
// number of backslashes at the end of a line joins the next line, "\c"
// stands for "c", a value may be double-quoted. `file` names it in
// messages, which give the line and the fix.
Result<std::vector<Config::Domain>> parse_topology(std::string_view text, std::string_view file);

// The topology.conf to read: topology_conf= when given, else topology.conf
// in the directory of slurm_conf, which must be slurmstepd's own SLURM_CONF
// (getenv, never the job's environment: users control that); null or empty:
// kDefaultSlurmConf.
Result<std::string> topology_conf_path(const Config &cfg, const char *slurm_conf);

// Reads and parses the file at path (see topology.cpp for what is checked).
Result<std::vector<Config::Domain>> read_topology(const std::string &path);

// host's domain among the leaf domains read from `file`: "" (a domain of its
// own) when no leaf names it; an error when two do.
Result<std::string> topology_domain_of(const std::vector<Config::Domain> &domains, std::string_view file,
                                       std::string_view host);

// The failure domain of host under cfg: plugstack.conf's failure_domains
// (failure_domain_of), or with failure_domains=topology the file's (read
// now). slurm_conf: as for topology_conf_path.
Result<std::string> node_failure_domain(const Config &cfg, std::string_view host, const char *slurm_conf);

}  // namespace tck::spank
