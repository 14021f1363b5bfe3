// The runtime's settings: what the SPANK plugin hands the tasks in
// TIERCKPT_* variables (tierckpt(7)), or what a program passes to
// tierckpt_open_opts as key=value pairs (tierckpt(3)). Defaults come from
// common/defaults.hpp. Read once, by Checkpointer::open.
#pragma once

#include <cstdint>
#include <string>

#include "common/defaults.hpp"
#include "common/parse.hpp"
#include "common/status.hpp"

namespace tck {

struct Options {
    std::string store_path;        // TIERCKPT_STORE
    std::uint64_t store_bytes = 0; // with a path that does not exist yet: create it this large
    bool prefault = true;          // TIERCKPT_PREFAULT
    std::uint64_t job_id = 0;      // TIERCKPT_JOB_ID
    unsigned replicas = 0;         // TIERCKPT_REPLICAS: copies on other nodes
    std::string transport = "auto";  // TIERCKPT_TRANSPORT: ucx, ofi or auto
    int replica_timeout_ms = defaults::kReplicaTimeoutMs;        // TIERCKPT_REPLICA_TIMEOUT_MS
    std::string persist_dir;                                     // TIERCKPT_PERSIST_DIR: the persistent tier ("" : none)
    std::uint64_t persist_every = defaults::kPersistEvery;       // TIERCKPT_PERSIST_EVERY: flush every Nth committed version
    bool persist_every_auto = false;                             // TIERCKPT_PERSIST_EVERY=auto: the schedule chooses N
    std::uint32_t persist_keep = defaults::kPersistKeep;         // TIERCKPT_PERSIST_KEEP: persistent versions to keep
    int peer_timeout_ms = defaults::kPeerTimeoutMs;  // TIERCKPT_PEER_TIMEOUT_MS (0: do not watch peers)
    std::string failure_domain;      // TIERCKPT_FAILURE_DOMAIN: this node's (rack, switch...); "": its own
    bool cuda = true;                // TIERCKPT_CUDA: look for device regions (with the CUDA tier)
    CkptInterval ckpt_interval;      // TIERCKPT_CKPT_INTERVAL: when due() says a save is due (default auto)
    double node_mtbf_s = defaults::kNodeMtbfS;  // TIERCKPT_NODE_MTBF: a node's MTBF, for auto
    double max_overhead = 0;         // TIERCKPT_MAX_OVERHEAD: auto's cap on time saving, (0, 1); 0: none

    // From the variables the SPANK plugin sets (see tierckpt(7)).
    static Result<Options> from_env();
    // key=value: store, store_bytes, prefault, job_id, replicas, transport,
    // replica_timeout_ms, peer_timeout_ms, failure_domain, persist_dir, persist_every,
    // persist_keep, cuda, ckpt_interval, node_mtbf, max_overhead.
    Status set(const std::string &key, const std::string &value);
};

}  // namespace tck
