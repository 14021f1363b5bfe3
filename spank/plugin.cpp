// spank_tierckpt.so: the SPANK entry points. This file dispatches on the
// context; remote.cpp (slurmstepd) and job_script.cpp (prolog/epilog) do
// the work there. No exception may cross a callback, and no callback may
// crash or hang slurmd or slurmstepd.
//
// Where errors surface (Slurm 22.05, measured on the test cluster):
//  - only a negative return counts as failure (see kCallbackFailed);
//  - an option callback that fails in srun/sbatch/salloc stops the command
//    at once (exit 255), with our message;
//  - init_post_opt failing in srun/sbatch/salloc stops it (exit 1);
//  - init failing does NOT stop srun, so a bad plugstack.conf is reported
//    from init_post_opt;
//  - in slurmstepd, init_post_opt failing yields "launch failed" but srun
//    exits 0 and our message is lost; task_init failing makes the tasks
//    exit 1 with our message on the user's terminal. So slurmstepd records
//    errors in init_post_opt and reports them from task_init.
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "state.hpp"

extern "C" {
// The symbols Slurm looks for. plugin_name is also the prefix of the
// SPANK__SLURM_SPANK_OPTION_tierckpt_* variables.
extern const char plugin_name[] = "tierckpt";
extern const char plugin_type[] = "spank";
extern const unsigned int plugin_version = SLURM_VERSION_NUMBER;
extern const unsigned int spank_plugin_version = SLURM_VERSION_NUMBER;
}

namespace tck::spank {

PluginState &state() {
    static PluginState s;
    return s;
}

namespace {

void slurm_sink(tck::log::Level level, std::string_view line) {
    std::string msg(line);
    switch (level) {
    case tck::log::Level::error: slurm_error("tierckpt: %s", msg.c_str()); break;
    case tck::log::Level::warn: slurm_info("tierckpt: warning: %s", msg.c_str()); break;
    case tck::log::Level::info: slurm_info("tierckpt: %s", msg.c_str()); break;
    case tck::log::Level::debug: slurm_debug("tierckpt: %s", msg.c_str()); break;
    }
}

int option_cb(int val, const char *optarg, int remote) {
    try {
        PluginState &s = state();
        Status st = apply_option(static_cast<Opt>(val), optarg, s.cfg, s.opts);
        if (st) return 0;
        if (remote) {
            // srun checked this already; keep it for task_init to report.
            s.opt_status = st;
            return 0;
        }
        tck::log::error("{}", st.message());
    } catch (const std::exception &e) {
        slurm_error("tierckpt: option: %s", e.what());
    } catch (...) {
        slurm_error("tierckpt: option: unknown exception");
    }
    return -1;
}

// has_arg 2: --ckpt-mem alone takes the admin's default size.
spank_option g_options[] = {
    {const_cast<char *>("ckpt-mem"), const_cast<char *>("SIZE"),
     const_cast<char *>("Reserve SIZE of memory per node for checkpoints (512M, 8G, 25%; bare: the site default) "
                        "and turn tierckpt on [tierckpt]"),
     2, static_cast<int>(Opt::mem), option_cb},
    {const_cast<char *>("ckpt-replicas"), const_cast<char *>("N"),
     const_cast<char *>("Keep N copies of each checkpoint in other nodes' memory [tierckpt]"), 1,
     static_cast<int>(Opt::replicas), option_cb},
    {const_cast<char *>("ckpt-persist"), const_cast<char *>("DIR"),
     const_cast<char *>("Also flush checkpoints to the directory DIR [tierckpt]"), 1, static_cast<int>(Opt::persist),
     option_cb},
    {const_cast<char *>("ckpt-persist-every"), const_cast<char *>("N"),
     const_cast<char *>("Flush every Nth committed checkpoint to --ckpt-persist (default 10), or auto (chosen "
                        "with the checkpoint schedule) [tierckpt]"), 1,
     static_cast<int>(Opt::persist_every), option_cb},
    {const_cast<char *>("ckpt-persist-keep"), const_cast<char *>("K"),
     const_cast<char *>("Keep the newest K checkpoints in --ckpt-persist (default 3) [tierckpt]"), 1,
     static_cast<int>(Opt::persist_keep), option_cb},
    {const_cast<char *>("ckpt-transport"), const_cast<char *>("KIND"),
     const_cast<char *>("RDMA transport for replicas: ucx, ofi or auto (default) [tierckpt]"), 1,
     static_cast<int>(Opt::transport), option_cb},
    {const_cast<char *>("ckpt-interval"), const_cast<char *>("WHEN"),
     const_cast<char *>("When the program's due() calls say a checkpoint is due: auto (default: chosen from the "
                        "save's cost and --ckpt-node-mtbf), every N steps (100), or a duration (10m) [tierckpt]"),
     1, static_cast<int>(Opt::ckpt_interval), option_cb},
    {const_cast<char *>("ckpt-node-mtbf"), const_cast<char *>("DURATION"),
     const_cast<char *>("A node's mean time between failures for --ckpt-interval=auto (30d, 5000h; inf: none; "
                        "default: the site's, else 264d) [tierckpt]"),
     1, static_cast<int>(Opt::node_mtbf), option_cb},
    {const_cast<char *>("ckpt-max-overhead"), const_cast<char *>("PCT"),
     const_cast<char *>("With --ckpt-interval=auto, spend at most PCT % of the training time saving (2 or 2%) "
                        "[tierckpt]"),
     1, static_cast<int>(Opt::max_overhead), option_cb},
    {const_cast<char *>("ckpt-min-nodes"), const_cast<char *>("K"),
     const_cast<char *>("With --requeue: when a node fails and none is free to replace it, the requeued job "
                        "starts on its K or more surviving nodes, as many tasks a node [tierckpt]"),
     1, static_cast<int>(Opt::min_nodes), option_cb},
};

const char *context_name(spank_context_t ctx) {
    switch (ctx) {
    case S_CTX_LOCAL: return "srun";
    case S_CTX_REMOTE: return "slurmstepd";
    case S_CTX_ALLOCATOR: return "allocator";
    case S_CTX_SLURMD: return "slurmd";
    case S_CTX_JOB_SCRIPT: return "job script";
    default: return "unknown context";
    }
}

template <typename F>
int guarded(const char *what, F &&f) {
    try {
        return f();
    } catch (const std::exception &e) {
        slurm_error("tierckpt: %s: %s", what, e.what());
    } catch (...) {
        slurm_error("tierckpt: %s: unknown exception", what);
    }
    return kCallbackFailed;
}

}  // namespace

spank_option *option_table() { return g_options; }
int option_count() { return static_cast<int>(sizeof g_options / sizeof g_options[0]); }

}  // namespace tck::spank

using namespace tck::spank;

// Parses plugstack.conf's arguments into the state. Called from init and,
// since Slurm calls no init in the job_script context, from the prolog and
// epilog too.
static void load_config(int ac, char **av) {
    PluginState &s = state();
    tck::log::set_sink(&slurm_sink);
    std::vector<std::string_view> args(av, av + ac);
    auto cfg = parse_config(args);
    if (!cfg) {
        // Reported where it stops the user's command: init_post_opt in
        // srun/sbatch/salloc, task_init in slurmstepd.
        s.cfg_status = cfg.status();
    } else {
        s.cfg = *cfg;
        s.cfg_status = tck::Status::ok();
        tck::log::set_level(s.cfg.log_level);
    }
}

extern "C" int slurm_spank_init(spank_t sp, int ac, char **av) {
    return guarded("init", [&]() -> int {
        load_config(ac, av);
        spank_context_t ctx = spank_context();
        tck::log::debug("init in {} context", context_name(ctx));
        if (ctx == S_CTX_SLURMD) {
            // slurmd starts (as root, at boot): make store_dir now, before
            // any user can take its name (see StoreDir::open). Never fails
            // slurmd: slurmstepd tries again for every step.
            if (state().cfg_status) {
                auto dir = StoreDir::open(state().cfg.store_dir, true);
                if (!dir) tck::log::error("slurmd start: {}", dir.status().message());
            }
            return ESPANK_SUCCESS;
        }
        if (ctx == S_CTX_LOCAL || ctx == S_CTX_ALLOCATOR || ctx == S_CTX_REMOTE) {
            for (int i = 0; i < option_count(); ++i) {
                spank_err_t rc = spank_option_register(sp, &g_options[i]);
                if (rc != ESPANK_SUCCESS) {
                    tck::log::error("cannot register --{}: {}", g_options[i].name, spank_strerror(rc));
                    return kCallbackFailed;
                }
            }
        }
        return ESPANK_SUCCESS;
    });
}

extern "C" int slurm_spank_init_post_opt(spank_t sp, int, char **) {
    return guarded("init_post_opt", [&]() -> int {
        PluginState &s = state();
        if (spank_remote(sp)) return remote_init_post_opt(sp);
        // srun, sbatch, salloc: the last chance to stop before anything runs.
        if (!s.cfg_status) {
            tck::log::error("plugstack.conf: {}; ask the admin to fix the tierckpt line (see spank-tierckpt(8))",
                            s.cfg_status.message());
            return kCallbackFailed;
        }
        auto settled = settle(s.opts, s.cfg);
        if (!settled) {
            tck::log::error("{}", settled.status().message());
            return kCallbackFailed;
        }
        return ESPANK_SUCCESS;
    });
}

extern "C" int slurm_spank_task_init_privileged(spank_t sp, int, char **) {
    return guarded("task_init_privileged", [&] { return remote_task_init_privileged(sp); });
}

extern "C" int slurm_spank_task_init(spank_t sp, int, char **) {
    return guarded("task_init", [&] { return remote_task_init(sp); });
}

// A required plugin whose job_prolog/job_epilog fails drains the node, so
// these never fail for a reason of tierckpt's own: they log and return 0.
extern "C" int slurm_spank_job_prolog(spank_t sp, int ac, char **av) {
    (void)guarded("job_prolog", [&] {
        load_config(ac, av);
        return job_prolog(sp);
    });
    return ESPANK_SUCCESS;
}

extern "C" int slurm_spank_job_epilog(spank_t sp, int ac, char **av) {
    (void)guarded("job_epilog", [&] {
        load_config(ac, av);
        return job_epilog(sp);
    });
    return ESPANK_SUCCESS;
}
