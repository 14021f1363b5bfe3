// The node store on disk: one directory per job under the admin's
// store_dir, holding one pre-allocated file, and root's own bookkeeping
// where no user can write.
//
//   STORE_DIR/                      root, 0755, on tmpfs or hugetlbfs; made at
//                                   boot (tmpfiles.d) or when slurmd starts
//   STORE_DIR/.tierckpt/            root, 0700: nothing in it is a user's
//   STORE_DIR/.tierckpt/lock        flock: one creation, eviction or removal
//                                   at a time on the node
//   STORE_DIR/.tierckpt/reserved/J  what the plugin reserved for job J: its
//                                   uid, gid and size in bytes
//   STORE_DIR/.tierckpt/expire/J    when job J's store may go (seconds since
//                                   the epoch), written when the job ends
//   STORE_DIR/.tierckpt/trash/      job directories being removed
//   STORE_DIR/job.J/                root, 0711: holds the store and nothing
//                                   else (its user can write nothing here)
//   STORE_DIR/job.J/store           the job's user, 0600, the reserved size
//
// What a job's user controls is the store file's contents and size (they
// own it): its size is restored to the reservation at every attach, and
// freeing a store truncates it first, so memory is given back whatever
// links or mappings the user made. Every operation works from directory
// fds opened without following symlinks; no open can block (O_NONBLOCK)
// and nothing but a regular file is used as a store. Meant to run as root
// (slurmstepd, the job prolog/epilog, slurmd at start); also works
// unprivileged for the job's own uid, which the unit tests use.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include "common/status.hpp"
#include "common/unique_fd.hpp"

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
    std::uint64_t bytes = 0;  // wanted size; an existing reservation of at least this size is reused
    bool prefault = true;
    MemInfo mem;              // the node's memory, for the up-front check
};

struct StoreInfo {
    std::string path;
    std::uint64_t bytes = 0;  // the reservation (an existing one may be larger than asked)
    bool created = false;     // false: an earlier step (or the job before a requeue) made it
};

// What the plugin reserved for a job, in root's private directory: the
// one record of a store's size that its user cannot change.
struct Reservation {
    uid_t uid = 0;
    gid_t gid = 0;
    std::uint64_t bytes = 0;
};
std::string format_reservation(const Reservation &r);
// Bounded and strict: "tierckpt-reservation 1 uid U gid G bytes B\n".
Result<Reservation> parse_reservation(const std::string &text);

struct JobStore {
    std::uint64_t job_id = 0;
    uid_t uid = 0;
    std::uint64_t bytes = 0;   // reserved
    bool reserved = false;     // false: no reservation record (an older version's, or a creation that died)
    std::int64_t expires = 0;  // 0: not expiring (the job runs, or its mark cannot be read)
};

class StoreDir {
public:
    // Opens (and with create, makes) the admin's store directory and its
    // private part. Every directory above it must be root's (or ours) and
    // writable by no one else unless sticky (like /dev/shm); store_dir
    // itself must be ours, not a symlink, not writable by others, on tmpfs
    // or hugetlbfs. With create, running as root: a store_dir that another
    // user made first (squatting /dev/shm/tierckpt after a reboot) is moved
    // aside, logged, and made again.
    static Result<StoreDir> open(const std::string &path, bool create);

    const std::string &path() const { return path_; }

    // Creates the job's store or attaches to the one an earlier step made.
    // Checks memory before allocating anything; evicts expiring stores of
    // other jobs when that makes room. A store whose user changed its size
    // gets the reserved size back. Nothing is left behind on failure.
    Result<StoreInfo> create_or_attach(const StoreRequest &req);

    // Every job directory with what root recorded for it.
    Result<std::vector<JobStore>> list();
    bool has_job(std::uint64_t job_id);

    Status mark_expiring(std::uint64_t job_id, std::int64_t when);
    Status clear_expiry(std::uint64_t job_id);
    // Gives the store's memory back at once (truncates it), moves the job
    // directory aside and removes it, however deep or odd what is in it.
    Status free_job(std::uint64_t job_id);
    // Frees every store whose mark has expired at `now`, and job
    // directories tierckpt has no reservation for (made by an older
    // version, or left by a creation that died). Goes on past a failure;
    // returns how many went, or the first error.
    Result<unsigned> free_expired(std::int64_t now);

    // How long a process waits for the node's lock before giving up.
    static constexpr int kLockWaitSeconds = 120;

private:
    StoreDir(std::string path, UniqueFd root, UniqueFd priv, UniqueFd reserved, UniqueFd expire, UniqueFd trash,
             UniqueFd lock)
        : path_(std::move(path)), root_(std::move(root)), priv_(std::move(priv)), reserved_(std::move(reserved)),
          expire_(std::move(expire)), trash_(std::move(trash)), lock_(std::move(lock)) {}

    class Lock;
    Result<Lock> lock();

    // The *_locked functions expect the lock held.
    Result<StoreInfo> create_or_attach_locked(const StoreRequest &req, UniqueFd &store_fd);
    Result<std::vector<JobStore>> list_locked();
    Status free_job_locked(std::uint64_t job_id);
    Status clear_expiry_locked(std::uint64_t job_id);
    Status make_room(std::uint64_t need, std::uint64_t except_job, std::uint64_t available);
    Result<std::uint64_t> fs_free();
    std::optional<Reservation> read_reservation(std::uint64_t job_id);
    Status write_reservation(std::uint64_t job_id, const Reservation &r);
    // Removes what is in trash/ for up to `seconds`; what is left (added
    // by a user's process while it ran, or not removable now) is tried
    // again at the next free.
    void empty_trash(double seconds);

    std::string path_;
    UniqueFd root_;
    UniqueFd priv_;
    UniqueFd reserved_;
    UniqueFd expire_;
    UniqueFd trash_;
    UniqueFd lock_;
};

std::string job_dir_name(std::uint64_t job_id);

}  // namespace tck::spank
