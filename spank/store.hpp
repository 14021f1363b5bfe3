// The node store on disk: one directory per job under the admin's
// store_dir, holding one pre-allocated file, plus root-only expiry marks.
//
//   STORE_DIR/                 root, 0755, on tmpfs or hugetlbfs
//   STORE_DIR/.expire/         root, 0700: one file per finished job whose
//                              store waits for a requeue; it holds the
//                              time (seconds since the epoch) it expires
//   STORE_DIR/job.JOBID/       the job's user, 0700
//   STORE_DIR/job.JOBID/store  the job's user, 0600, exactly the size asked
//
// Every operation works from a directory fd opened without following
// symlinks, so nothing a user plants (a symlink, a FIFO, a file of another
// owner) is followed or written through. Meant to run as root (slurmstepd,
// the job prolog/epilog); also works unprivileged for the job's own uid,
// which the unit tests use.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <ctime>
#include <string>
#include <vector>

#include "../runtime/common/status.hpp"
#include "../runtime/common/unique_fd.hpp"

namespace tck::spank {

struct MemInfo {
    std::uint64_t total = 0;      // MemTotal
    std::uint64_t available = 0;  // MemAvailable
};
// Reads /proc/meminfo (or another file in that format, for tests).
Result<MemInfo> read_meminfo(const char *path = "/proc/meminfo");

struct StoreRequest {
    std::uint64_t job_id = 0;
    uid_t uid = 0;
    gid_t gid = 0;
    std::uint64_t bytes = 0;  // wanted size; an existing store of at least this size is reused
    bool prefault = true;
    MemInfo mem;              // the node's memory, for the up-front check
};

struct StoreInfo {
    std::string path;
    std::uint64_t bytes = 0;  // the store's real size (an existing store may be larger than asked)
    bool created = false;     // false: an earlier step (or the job before a requeue) made it
};

struct JobStore {
    std::uint64_t job_id = 0;
    uid_t uid = 0;
    std::uint64_t bytes = 0;
    std::int64_t expires = 0;  // 0: not expiring (the job is running or ended without an epilog)
};

class StoreDir {
public:
    // Opens (and with create, makes) the admin's store directory, refusing
    // one that is a symlink, not owned by us, writable by others, or not on
    // tmpfs/hugetlbfs.
    static Result<StoreDir> open(const std::string &path, bool create);

    const std::string &path() const { return path_; }

    // Creates the job's store or attaches to the one an earlier step made.
    // Checks memory before allocating anything; evicts expiring stores of
    // other jobs when that makes room. Nothing is left behind on failure.
    Result<StoreInfo> create_or_attach(const StoreRequest &req);

    // The job's store, if any (no checks beyond what listing needs).
    Result<std::vector<JobStore>> list();
    bool has_job(std::uint64_t job_id);

    Status mark_expiring(std::uint64_t job_id, std::int64_t when);
    Status clear_expiry(std::uint64_t job_id);
    Status free_job(std::uint64_t job_id);
    // Frees every store whose mark has expired at `now`; returns how many.
    Result<unsigned> free_expired(std::int64_t now);

private:
    StoreDir(std::string path, UniqueFd root, UniqueFd expire)
        : path_(std::move(path)), root_(std::move(root)), expire_(std::move(expire)) {}

    Status make_room(std::uint64_t need, std::uint64_t except_job, std::uint64_t available);
    Result<std::uint64_t> fs_free();

    std::string path_;
    UniqueFd root_;
    UniqueFd expire_;
};

std::string job_dir_name(std::uint64_t job_id);

}  // namespace tck::spank
