// The job prolog and epilog (job_script context, as root): the lifecycle of
// node stores. A store outlives its job only while a requeue may come back
// for it (keep_seconds), and never starves the next job.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <thread>

#include "common/log.hpp"
#include "common/privilege.hpp"
#include "store/persist.hpp"
#include "state.hpp"

namespace tck::spank {

namespace {

std::int64_t now() { return static_cast<std::int64_t>(std::time(nullptr)); }

// The store directory if it exists; nothing is created here.
Result<StoreDir> open_existing(const PluginState &s) {
    if (!s.cfg_status) return s.cfg_status;
    return StoreDir::open(s.cfg.store_dir, false);
}

// The flush at the end of a job: the newest committed version in this
// node's store goes to the job's persistent directory if it is newer than
// what is there. It runs in a child process as the job's user (so every
// file it makes is the user's, and it can write nothing the user could
// not), calls no shell, and is killed after flush_seconds: the epilog
// never fails or hangs for it.
void flush_at_job_end(const PluginState &s, std::uint32_t job_id, uid_t uid, gid_t gid) {
    if (s.cfg.flush_seconds == 0) return;
    const std::string store = s.cfg.store_dir + "/" + job_dir_name(job_id) + "/store";
    pid_t pid = ::fork();
    if (pid < 0) {
        log::error("epilog: job {}: cannot start the flush to the persistent tier: {}", job_id, std::strerror(errno));
        return;
    }
    if (pid == 0) {
        // The user's groups too (a directory shared through a group).
        if (::getuid() == 0 && uid != 0) {
            Status st = become_user(uid, gid);
            if (!st) {
                log::error("epilog: job {}: no flush to the persistent tier: {}", job_id, st.message());
                ::_exit(3);
            }
        }
        if (::getuid() != uid || ::geteuid() != uid) ::_exit(3);
        ::umask(077);
        int rc = 1;
        try {
            auto r = persist::scavenge(store, "", 0, s.cfg.persist_dirs);
            if (r) {
                if (r->written || r->complete) {
                    log::info("epilog: job {}: {} (shards written here: {})", job_id, r->note, r->written);
                } else {
                    log::debug("epilog: job {}: {}", job_id, r->note);
                }
                rc = 0;
            } else {
                log::error("epilog: job {}: flush to the persistent tier: {}", job_id, r.status().message());
            }
        } catch (...) {
            log::error("epilog: job {}: flush to the persistent tier: unexpected exception", job_id);
        }
        ::_exit(rc);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(s.cfg.flush_seconds);
    for (;;) {
        int status = 0;
        pid_t w = ::waitpid(pid, &status, WNOHANG);
        if (w == pid || (w < 0 && errno != EINTR)) return;
        if (std::chrono::steady_clock::now() >= deadline) {
            ::kill(pid, SIGKILL);
            while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            log::error("epilog: job {}: the flush to the persistent tier took more than flush_seconds={} s and was "
                       "stopped; the versions already there are intact",
                       job_id, s.cfg.flush_seconds);
            return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
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
        uid_t uid = 0;
        gid_t gid = 0;
        if (spank_get_item(sp, S_JOB_UID, &uid) == ESPANK_SUCCESS &&
            spank_get_item(sp, S_JOB_GID, &gid) == ESPANK_SUCCESS) {
            flush_at_job_end(s, job_id, uid, gid);
        } else {
            log::error("epilog: job {}: no uid/gid from Slurm: no flush to the persistent tier", job_id);
        }
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
