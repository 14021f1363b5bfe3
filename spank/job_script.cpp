// The job prolog and epilog (job_script context, as root): the lifecycle of
// node stores. A store outlives its job only while a requeue may come back
// for it (keep_seconds), and never starves the next job.
#include <ctime>

#include "../runtime/common/log.hpp"
#include "state.hpp"

namespace tck::spank {

namespace {

std::int64_t now() { return static_cast<std::int64_t>(std::time(nullptr)); }

// The store directory if it exists; nothing is created here.
Result<StoreDir> open_existing(const PluginState &s) {
    if (!s.cfg_status) return s.cfg_status;
    return StoreDir::open(s.cfg.store_dir, false);
}

}  // namespace

int job_prolog(spank_t sp) {
    const PluginState &s = state();
    auto dir = open_existing(s);
    if (!dir) {
        if (dir.status().code() != TIERCKPT_ERR_NOT_FOUND) log::error("prolog: {}", dir.status().message());
        return ESPANK_SUCCESS;
    }
    auto freed = dir->free_expired(now());
    if (!freed) log::error("prolog: {}", freed.status().message());
    std::uint32_t job_id = 0;
    if (spank_get_item(sp, S_JOB_ID, &job_id) == ESPANK_SUCCESS && dir->has_job(job_id)) {
        // A requeued job is back on a node that kept its store.
        Status st = dir->clear_expiry(job_id);
        if (!st) log::error("prolog: {}", st.message());
        log::info("job {} is back: its store is kept", job_id);
    }
    return ESPANK_SUCCESS;
}

int job_epilog(spank_t sp) {
    const PluginState &s = state();
    auto dir = open_existing(s);
    if (!dir) {
        if (dir.status().code() != TIERCKPT_ERR_NOT_FOUND) log::error("epilog: {}", dir.status().message());
        return ESPANK_SUCCESS;
    }
    std::uint32_t job_id = 0;
    if (spank_get_item(sp, S_JOB_ID, &job_id) == ESPANK_SUCCESS && dir->has_job(job_id)) {
        // The epilog cannot tell a job that ended for good from one being
        // requeued: Slurm 22.05 gives both SLURM_JOB_EXIT_CODE=0 here
        // (measured). So every store waits keep_seconds, and is evicted
        // sooner whenever another job needs the memory.
        if (s.cfg.keep_seconds == 0) {
            Status st = dir->free_job(job_id);
            if (!st) log::error("epilog: {}", st.message());
        } else {
            Status st = dir->mark_expiring(job_id, now() + static_cast<std::int64_t>(s.cfg.keep_seconds));
            if (!st) log::error("epilog: {}", st.message());
        }
    }
    auto freed = dir->free_expired(now());
    if (!freed) log::error("epilog: {}", freed.status().message());
    return ESPANK_SUCCESS;
}

}  // namespace tck::spank
