#include "options.hpp"

#include <cstdlib>
#include <cstring>
#include <limits>
#include <utility>

#include "common/env_names.hpp"
#include "common/parse.hpp"
#include "common/size.hpp"
#include "store/persist.hpp"

namespace tck {

Result<Options> Options::from_env() {
    Options o;
    const char *store = std::getenv(env::kStore);
    if (!store || !*store) {
        return error(TIERCKPT_ERR_INVALID,
                     "no node store: {} is not set; run the job with srun --ckpt-mem=SIZE (tierckpt's SPANK plugin), "
                     "or open with an explicit store path",
                     env::kStore);
    }
    o.store_path = store;
    if (const char *p = std::getenv(env::kPrefault)) o.prefault = std::strcmp(p, "0") != 0;
    if (const char *j = std::getenv(env::kJobId)) {
        auto n = parse_uint(env::kJobId, j, 0, std::numeric_limits<std::uint64_t>::max());
        if (n) o.job_id = *n;
    }
    const std::pair<const char *, const char *> keys[] = {
        {env::kReplicas, "replicas"},          {env::kTransport, "transport"},
        {env::kReplicaTimeout, "replica_timeout_ms"}, {env::kPeerTimeout, "peer_timeout_ms"},
        {env::kFailureDomain, "failure_domain"}, {env::kPersistDir, "persist_dir"},
        {env::kPersistEvery, "persist_every"}, {env::kPersistKeep, "persist_keep"},
        {env::kCuda, "cuda"}, {env::kCkptInterval, "ckpt_interval"},
        {env::kNodeMtbf, "node_mtbf"}, {env::kMaxOverhead, "max_overhead"},
    };
    for (const auto &[key, k] : keys) {
        const char *v = std::getenv(key);
        if (!v || !*v) continue;
        if (key == env::kPersistEvery && std::strcmp(v, "0") == 0) continue;  // the plugin's "no persistent tier"
        if (key == env::kPersistKeep && std::strcmp(v, "0") == 0) continue;
        Status st = o.set(k, v);
        if (!st) return error(st.code(), "{}: {}", key, st.message());
    }
    return o;
}

Status Options::set(const std::string &key, const std::string &value) {
    if (key == "store") {
        auto p = parse_abs_path("store", value);
        if (!p) return p.status();
        store_path = *p;
    } else if (key == "store_bytes") {
        auto s = parse_size(value, false);
        if (!s) return error(TIERCKPT_ERR_INVALID, "store_bytes: {}", s.status().message());
        store_bytes = s->bytes;
    } else if (key == "prefault") {
        auto b = parse_bool(key, value);
        if (!b) return b.status();
        prefault = *b;
    } else if (key == "job_id") {
        auto n = parse_uint(key, value, 0, std::numeric_limits<std::uint64_t>::max());
        if (!n) return n.status();
        job_id = *n;
    } else if (key == "replicas") {
        auto n = parse_uint(key, value, 0, 16);
        if (!n) return n.status();
        replicas = static_cast<unsigned>(*n);
    } else if (key == "transport") {
        if (value != "ucx" && value != "ofi" && value != "auto") {
            return error(TIERCKPT_ERR_INVALID, "transport={}: expected ucx, ofi or auto", value);
        }
        transport = value;
    } else if (key == "replica_timeout_ms") {
        auto n = parse_uint(key, value, 1, 3600000);
        if (!n) return n.status();
        replica_timeout_ms = static_cast<int>(*n);
    } else if (key == "failure_domain") {
        if (value.size() > 64 || value.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") !=
                                     std::string::npos) {
            return error(TIERCKPT_ERR_INVALID, "failure_domain={}: give up to 64 letters, digits, '_', '.' or '-'",
                         value);
        }
        failure_domain = value;
    } else if (key == "peer_timeout_ms") {
        auto n = parse_uint(key, value, 0, 3600000);
        if (!n) return n.status();
        if (*n != 0 && *n < 500) return error(TIERCKPT_ERR_INVALID, "peer_timeout_ms={}: give 0 (off) or at least 500", *n);
        peer_timeout_ms = static_cast<int>(*n);
    } else if (key == "persist_dir") {
        if (value.empty()) {
            persist_dir.clear();
        } else {
            auto p = parse_abs_path(key, value);
            if (!p) return p.status();
            persist_dir = *p;
        }
    } else if (key == "persist_every" && value == "auto") {
        persist_every_auto = true;
    } else if (key == "persist_every") {
        persist_every_auto = false;
        auto n = parse_uint(key, value, 1, 1000000);
        if (!n) return n.status();
        persist_every = *n;
    } else if (key == "persist_keep") {
        auto n = parse_uint(key, value, 1, persist::kMaxKeep);
        if (!n) return n.status();
        persist_keep = static_cast<std::uint32_t>(*n);
    } else if (key == "cuda") {
        auto b = parse_bool(key, value);
        if (!b) return b.status();
        cuda = *b;
    } else if (key == "ckpt_interval") {
        auto iv = parse_ckpt_interval(key, value);
        if (!iv) return iv.status();
        ckpt_interval = *iv;
    } else if (key == "node_mtbf") {
        auto d = parse_duration(value);
        if (!d || !(*d > 0)) {
            return error(TIERCKPT_ERR_INVALID, "node_mtbf={}: expected a duration above 0 such as 264d, 30d, 12h "
                         "(no suffix: seconds), or inf",
                         value);
        }
        node_mtbf_s = *d;
    } else if (key == "max_overhead") {
        auto p = parse_percent(key, value);
        if (!p) return p.status();
        max_overhead = *p;
    } else {
        return error(TIERCKPT_ERR_INVALID,
                     "unknown option '{}' (known: store, store_bytes, prefault, job_id, replicas, transport, "
                     "replica_timeout_ms, peer_timeout_ms, failure_domain, persist_dir, persist_every, "
                     "persist_keep, cuda, ckpt_interval, node_mtbf, max_overhead)",
                     key);
    }
    return Status::ok();
}

}  // namespace tck
