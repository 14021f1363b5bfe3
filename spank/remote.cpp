// slurmstepd (remote context): reserve or re-attach the job's node store
// before the tasks start, hand it to them, and let them lock it.
#include <sys/resource.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdlib>
#include <ctime>
#include <string>

#include "common/env_names.hpp"
#include "common/log.hpp"
#include "common/parse.hpp"
#include "state.hpp"
#include "topology.hpp"

// From <slurm/slurm.h>, which a SPANK plugin need not include.
#ifndef SLURM_BATCH_SCRIPT
#define SLURM_BATCH_SCRIPT 0xfffffffb
#endif
#ifndef SLURM_EXTERN_CONT
#define SLURM_EXTERN_CONT 0xfffffffc
#endif

namespace tck::spank {

// This machine's host name up to the first dot.
std::string node_host_name() {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) return {};
    std::string name = host;
    return name.substr(0, name.find('.'));
}

namespace {

// Room for the runtime's own pinned buffers beyond the store.
constexpr std::uint64_t kMemlockSlack = 64ull << 20;

// A variable of the job's environment (the user's to set) read as a
// number up to max; 0 when it is unset, not a number, or larger.
std::uint64_t job_env_number(spank_t sp, const char *name, std::uint64_t max) {
    char buf[24] = {};
    if (spank_getenv(sp, name, buf, sizeof buf) != ESPANK_SUCCESS) return 0;
    auto n = parse_uint(name, buf, 0, max);
    return n ? *n : 0;
}

Status set_env(spank_t sp, const char *name, const std::string &value) {
    spank_err_t rc = spank_setenv(sp, name, value.c_str(), 1);
    if (rc != ESPANK_SUCCESS) return error(TIERCKPT_ERR_INTERNAL, "cannot set {}: {}", name, spank_strerror(rc));
    return Status::ok();
}

Status setup_store(spank_t sp, PluginState &s) {
    if (!s.cfg_status) {
        return error(TIERCKPT_ERR_INVALID, "plugstack.conf: {}; ask the admin to fix the tierckpt line",
                     s.cfg_status.message());
    }
    if (!s.opt_status) return s.opt_status;
    auto settings = settle(s.opts, s.cfg);
    if (!settings) return settings.status();

    std::uint32_t job_id = 0;
    uid_t uid = 0;
    gid_t gid = 0;
    if (spank_get_item(sp, S_JOB_ID, &job_id) != ESPANK_SUCCESS || spank_get_item(sp, S_JOB_UID, &uid) != ESPANK_SUCCESS ||
        spank_get_item(sp, S_JOB_GID, &gid) != ESPANK_SUCCESS) {
        return error(TIERCKPT_ERR_INTERNAL, "cannot read the job id, uid or gid from Slurm");
    }
    // The node's failure domain, by its name: the host name the kernel
    // gives (short form), never a variable of the job's environment, which
    // srun carries from wherever the user submitted (SLURMD_NODENAME of the
    // batch host, or anything the user sets). SLURM_CONF is slurmstepd's own
    // (slurmd sets it), never the job's. Sites whose NodeName differs from
    // the host name name their failure domains by host name
    // (spank-tierckpt(8)).
    std::string node = s.host_name();
    auto domain = node_failure_domain(s.cfg, node, std::getenv("SLURM_CONF"));
    if (!domain) {
        return error(domain.status().code(), "{}; ask the admin to fix it (see spank-tierckpt(8))",
                     domain.status().message());
    }

    auto mem = read_meminfo();
    if (!mem) return mem.status();
    auto bytes = store_bytes(*settings, s.cfg, mem->total);
    if (!bytes) return bytes.status();

    auto dir = StoreDir::open(s.cfg.store_dir, true);
    if (!dir) return dir.status();
    auto freed = dir->free_expired(static_cast<std::int64_t>(std::time(nullptr)));
    if (!freed) log::warn("freeing expired stores: {}", freed.status().message());

    StoreRequest req;
    req.job_id = job_id;
    req.uid = uid;
    req.gid = gid;
    req.bytes = *bytes;
    req.prefault = s.cfg.prefault;
    req.mem = *mem;
    auto info = dir->create_or_attach(req);
    if (!info) return info.status();
    log::info("job {}: {} store {} ({})", job_id, info->created ? "created" : "re-attached", info->path,
              format_size(info->bytes));
    s.store = *info;

    // How often the job was requeued, for the tasks (nothing here decides
    // by it). Slurm's own item where it has one (a batch step); Slurm 22.05
    // gives 0 to the steps an srun starts, so then the value slurmstepd put
    // in the batch script's environment, which srun carries: the user's to
    // change, read as a bounded number, and handed only to the user's own
    // tasks.
    std::uint32_t restarts = 0;
    if (spank_get_item(sp, S_SLURM_RESTART_COUNT, &restarts) != ESPANK_SUCCESS) restarts = 0;
    if (restarts == 0) restarts = static_cast<std::uint32_t>(job_env_number(sp, "SLURM_RESTART_COUNT", UINT32_MAX));
    for (auto [name, value] : {
             std::pair<const char *, std::string>{env::kStore, info->path},
             {env::kStoreBytes, std::to_string(info->bytes)},
             {env::kStoreCreated, info->created ? "1" : "0"},
             {env::kPrefault, s.cfg.prefault ? "1" : "0"},
             {env::kReplicas, std::to_string(settings->replicas)},
             {env::kTransport, settings->transport},
             {env::kPersistDir, settings->persist_dir},
             {env::kPersistEvery, settings->persist_every_auto ? std::string("auto")
                                                               : std::to_string(settings->persist_every)},
             {env::kPersistKeep, std::to_string(settings->persist_keep)},
             {env::kJobId, std::to_string(job_id)},
             {env::kRestartCount, std::to_string(restarts)},
             {env::kFailureDomain, *domain},
         }) {
        Status st = set_env(sp, name, value);
        if (!st) return st;
    }
    // The schedule's variables only when the user or the admin gave a
    // value: otherwise one the user exported reaches the tasks unchanged,
    // and without one the runtime's default holds. The user's own choices
    // (--ckpt-*, then an exported variable) come before the admin's
    // node_mtbf, which is a default, not a limit.
    struct Sched {
        const char *name;
        const std::string &value;
        bool keep_exported;
    };
    for (const Sched &v : {
             Sched{env::kCkptInterval, settings->ckpt_interval, false},
             Sched{env::kNodeMtbf, settings->node_mtbf, settings->node_mtbf_from_admin},
             Sched{env::kMaxOverhead, settings->max_overhead, false},
         }) {
        if (v.value.empty()) continue;
        spank_err_t rc = spank_setenv(sp, v.name, v.value.c_str(), v.keep_exported ? 0 : 1);
        if (rc != ESPANK_SUCCESS && !(v.keep_exported && rc == ESPANK_ENV_EXISTS)) {
            return error(TIERCKPT_ERR_INTERNAL, "cannot set {}: {}", v.name, spank_strerror(rc));
        }
    }
    return Status::ok();
}

bool is_task_zero(spank_t sp) {
    int local_id = 1;
    return spank_get_item(sp, S_TASK_ID, &local_id) == ESPANK_SUCCESS && local_id == 0;
}

// A batch job that tierckpt-epilog-slurmctld requeued onto fewer nodes
// (--ckpt-min-nodes) keeps in its environment the task count sbatch wrote
// there for its first run (SLURM_NTASKS, SLURM_NPROCS), and an srun in the
// script with no count of its own would ask for it and fail ("More
// processors requested than permitted"). With --ntasks-per-node given, the
// script gets the count that fits the nodes it has. The values are the
// user's: read as bounded numbers, and the result goes to the user's own
// script only.
void fit_batch_task_count(spank_t sp) {
    // A heterogeneous job's counts are per component: never shrunk.
    char het[24] = {};
    if (spank_getenv(sp, "SLURM_HET_JOB_ID", het, sizeof het) == ESPANK_SUCCESS) return;
    constexpr std::uint64_t kMaxCount = 1u << 24;
    const std::uint64_t per_node = job_env_number(sp, "SLURM_NTASKS_PER_NODE", kMaxCount);
    const std::uint64_t nodes = job_env_number(sp, "SLURM_JOB_NUM_NODES", kMaxCount);
    const std::uint64_t tasks = job_env_number(sp, "SLURM_NTASKS", kMaxCount);
    // A first run never has more tasks than its nodes times
    // --ntasks-per-node (Slurm refuses such a job), so only a requeued one
    // is changed. (Neither S_SLURM_RESTART_COUNT nor SLURM_RESTART_COUNT
    // says so here: both read 0 or nothing in the batch step's
    // init_post_opt on Slurm 22.05.)
    if (!per_node || !nodes || tasks <= per_node * nodes) return;
    const std::string fits = std::to_string(per_node * nodes);
    for (const char *name : {"SLURM_NTASKS", "SLURM_NPROCS"}) {
        if (Status st = set_env(sp, name, fits); !st) {
            log::warn("requeued onto {} node(s): {}; the batch script's srun may ask for the first run's {} tasks",
                      nodes, st.message(), tasks);
            return;
        }
    }
    log::info("requeued onto {} node(s) (--ckpt-min-nodes): the batch script's SLURM_NTASKS is {} "
              "(--ntasks-per-node={}), not the first run's {}",
              nodes, fits, per_node, tasks);
}

}  // namespace

int remote_init_post_opt(spank_t sp) {
    PluginState &s = state();
    if (!s.opts.enabled) return ESPANK_SUCCESS;
    std::uint32_t step_id = 0;
    if (spank_get_item(sp, S_JOB_STEPID, &step_id) == ESPANK_SUCCESS &&
        (step_id == SLURM_BATCH_SCRIPT || step_id == SLURM_EXTERN_CONT)) {
        if (step_id == SLURM_BATCH_SCRIPT && s.opts.min_nodes) fit_batch_task_count(sp);
        return ESPANK_SUCCESS;  // the batch script and the extern step get no store; job steps do
    }
    Status st = setup_store(sp, s);
    if (!st) {
        // Failing here loses the message and srun exits 0 (see plugin.cpp):
        // task_init reports it and fails the tasks.
        s.remote_error = st;
        log::error("{}", st.message());
    }
    return ESPANK_SUCCESS;
}

int remote_task_init_privileged(spank_t sp) {
    PluginState &s = state();
    if (!s.store) return ESPANK_SUCCESS;
    // The tasks pin the whole store (cudaHostRegister, RDMA registration):
    // raise their locked-memory limit to cover it. The store is within the
    // admin's cap, so this is too.
    struct rlimit rl {};
    if (::getrlimit(RLIMIT_MEMLOCK, &rl) != 0) return ESPANK_SUCCESS;
    std::uint64_t want = s.store->bytes + kMemlockSlack;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        struct rlimit raised = rl;
        raised.rlim_cur = want;
        if (raised.rlim_max != RLIM_INFINITY && raised.rlim_max < want) raised.rlim_max = want;
        if (::setrlimit(RLIMIT_MEMLOCK, &raised) != 0) {
            // No CAP_SYS_RESOURCE here: go as far as the hard limit allows.
            raised = rl;
            raised.rlim_cur = rl.rlim_max;
            (void)::setrlimit(RLIMIT_MEMLOCK, &raised);
            ::getrlimit(RLIMIT_MEMLOCK, &rl);
            if (is_task_zero(sp)) {
                log::info("cannot raise the locked-memory limit to {} (slurmstepd lacks CAP_SYS_RESOURCE); it stays "
                          "{}: pinning the whole store may fail",
                          format_size(want), format_size(rl.rlim_cur));
            }
        } else {
            rl = raised;
        }
    }
    (void)spank_setenv(sp, env::kMemlock,
                       rl.rlim_cur == RLIM_INFINITY ? "unlimited" : std::to_string(rl.rlim_cur).c_str(), 1);
    return ESPANK_SUCCESS;
}

int remote_task_init(spank_t sp) {
    PluginState &s = state();
    if (s.remote_error) return ESPANK_SUCCESS;
    if (is_task_zero(sp)) {
        slurm_error("tierckpt: %s", s.remote_error.message().c_str());
        slurm_error("tierckpt: no checkpoint store on this node; the step does not start");
    }
    return kCallbackFailed;
}

}  // namespace tck::spank
