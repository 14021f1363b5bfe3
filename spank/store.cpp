#include "store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <thread>

#include "common/log.hpp"
#include "common/parse.hpp"
#include "common/size.hpp"
#include "common/small_file.hpp"

#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif

namespace tck::spank {

namespace {

constexpr const char *kPrivateDir = ".tierckpt";
constexpr const char *kReservedDir = "reserved";
constexpr const char *kExpireDir = "expire";
constexpr const char *kTrashDir = "trash";
constexpr const char *kLockFile = "lock";
constexpr const char *kStoreFile = "store";
constexpr const char *kReservationMagic = "tierckpt-reservation 1";
constexpr std::size_t kMaxMarkBytes = 256;  // an expiry mark or a reservation: one short line
constexpr mode_t kJobDirMode = 0711;        // root's: the user may reach the store, not write beside it

Status sys_error(std::string_view what, const std::string &path, int err) {
    return error(TIERCKPT_ERR_IO, "{} {}: {}", what, path, std::strerror(err));
}

// Parses "job.<digits>"; returns false for anything else.
bool parse_job_dir(const char *name, std::uint64_t &job_id) {
    std::string_view s(name);
    if (s.substr(0, 4) != "job." || s.size() == 4 || s.size() > 24) return false;
    auto n = parse_uint("job id", s.substr(4), 0, UINT64_MAX);
    if (!n || std::to_string(*n) != s.substr(4)) return false;
    job_id = *n;
    return true;
}

// The names in the directory `dirfd` (not "." and ".."). Reads through a
// duplicate, so dirfd keeps its own offset.
Result<std::vector<std::string>> read_dir(int dirfd, const std::string &shown) {
    int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return sys_error("cannot open", shown, errno);
    DIR *dir = ::fdopendir(fd);
    if (!dir) {
        int err = errno;
        ::close(fd);
        return sys_error("cannot read", shown, err);
    }
    std::vector<std::string> names;
    while (struct dirent *e = ::readdir(dir)) {
        if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) names.emplace_back(e->d_name);
    }
    ::closedir(dir);
    return names;
}

// A directory under `parent` that only this process's uid may use: made
// with create, then checked (ours, no access for anyone else, no link).
Result<UniqueFd> private_dir(int parent, const char *name, const std::string &shown, bool create) {
    if (create && ::mkdirat(parent, name, 0700) != 0 && errno != EEXIST) return sys_error("cannot create", shown, errno);
    UniqueFd fd(::openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) {
        if (errno == ENOENT && !create) return error(TIERCKPT_ERR_NOT_FOUND, "{} does not exist", shown);
        return sys_error("cannot open", shown, errno);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || st.st_uid != ::geteuid() || (st.st_mode & 077)) {
        return error(TIERCKPT_ERR_INVALID, "{} is not a private directory of uid {}; remove it", shown, ::geteuid());
    }
    return fd;
}

// A name in trash/ that no other entry has.
std::string trash_name(const std::string &what) {
    static std::atomic<unsigned> counter{0};
    return what + "." + std::to_string(::getpid()) + "." + std::to_string(counter++) + "." +
           std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
}

std::int64_t parse_mark(const std::string &text) {
    auto end = text.find('\n');
    auto n = parse_uint("expiry", std::string_view(text).substr(0, end), 1, INT64_MAX);
    return n ? static_cast<std::int64_t>(*n) : -1;
}

}  // namespace

std::string job_dir_name(std::uint64_t job_id) { return "job." + std::to_string(job_id); }

std::string format_reservation(const Reservation &r) {
    return fmt::format("{} uid {} gid {} bytes {}\n", kReservationMagic, r.uid, r.gid, r.bytes);
}

Result<Reservation> parse_reservation(const std::string &text) {
    auto bad = [] { return error(TIERCKPT_ERR_CORRUPT, "bad reservation record"); };
    if (text.size() > kMaxMarkBytes || text.empty() || text.back() != '\n') return bad();
    std::vector<std::string_view> w;
    std::string_view s(text.data(), text.size() - 1);
    while (!s.empty() && w.size() < 9) {
        auto sp = s.find(' ');
        w.push_back(s.substr(0, sp));
        s = sp == std::string_view::npos ? std::string_view() : s.substr(sp + 1);
    }
    if (!s.empty() || w.size() != 8 || std::string(w[0]) + " " + std::string(w[1]) != kReservationMagic ||
        w[2] != "uid" || w[4] != "gid" || w[6] != "bytes") {
        return bad();
    }
    auto uid = parse_uint("uid", w[3], 0, UINT32_MAX - 1);
    auto gid = parse_uint("gid", w[5], 0, UINT32_MAX - 1);
    auto bytes = parse_uint("bytes", w[7], 1, INT64_MAX);
    if (!uid || !gid || !bytes) return bad();
    return Reservation{static_cast<uid_t>(*uid), static_cast<gid_t>(*gid), *bytes};
}

Result<MemInfo> read_meminfo(const char *path) {
    std::FILE *f = std::fopen(path, "re");
    if (!f) return sys_error("cannot read", path, errno);
    MemInfo m;
    char key[64];
    unsigned long long kib = 0;
    char unit[16];
    while (std::fscanf(f, "%63s %llu %15[^\n]\n", key, &kib, unit) >= 2) {
        if (std::strcmp(key, "MemTotal:") == 0) m.total = kib * 1024;
        if (std::strcmp(key, "MemAvailable:") == 0) m.available = kib * 1024;
    }
    std::fclose(f);
    if (m.total == 0) return error(TIERCKPT_ERR_IO, "{} has no MemTotal line", path);
    if (m.available == 0) m.available = m.total;  // very old kernels
    return m;
}

// ---------------------------------------------------------------- the lock
class StoreDir::Lock {
public:
    explicit Lock(int fd) : fd_(fd) {}
    Lock(Lock &&o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Lock &operator=(Lock &&) = delete;
    Lock(const Lock &) = delete;
    ~Lock() {
        if (fd_ >= 0) ::flock(fd_, LOCK_UN);
    }

private:
    int fd_;
};

// Only root's processes can open the lock file (it lies in the private
// directory): no user can hold it. Every holder does bounded work, and the
// wait is bounded too: a callback of slurmstepd or the epilog never hangs.
Result<StoreDir::Lock> StoreDir::lock() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kLockWaitSeconds);
    for (;;) {
        if (::flock(lock_.get(), LOCK_EX | LOCK_NB) == 0) return Lock(lock_.get());
        if (errno != EWOULDBLOCK && errno != EINTR) {
            return sys_error("cannot lock", path_ + "/" + kPrivateDir + "/" + kLockFile, errno);
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            return error(TIERCKPT_ERR_TIMEOUT,
                         "the node's store directory {} stayed locked for {} s (another step making a very large "
                         "store?); try again",
                         path_, kLockWaitSeconds);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

// ---------------------------------------------------------------- open
Result<StoreDir> StoreDir::open(const std::string &path, bool create) {
    auto checked = parse_abs_path("store_dir", path);
    auto slash = path.rfind('/');
    if (!checked || path.size() < 2 || slash + 1 == path.size()) {
        return error(TIERCKPT_ERR_INVALID, "store_dir={}: expected an absolute path below a tmpfs mount", path);
    }
    const uid_t me = ::geteuid();

    // The directories above store_dir, from "/": each one root's (or ours)
    // and writable by no one else, unless sticky (/dev/shm: others may
    // create there, but not replace or rename what root made). A link
    // among them is followed only when such a directory holds it (so root
    // made it).
    UniqueFd pfd(::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!pfd) return sys_error("cannot open", "/", errno);
    std::string walked;
    std::size_t at = 1;
    while (at < slash) {
        std::size_t next = path.find('/', at);
        std::string comp = path.substr(at, next - at);
        walked += "/" + comp;
        UniqueFd fd(::openat(pfd.get(), comp.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!fd) return sys_error("cannot open the directory", walked, errno);
        struct stat lst {}, st {};
        if (::fstatat(pfd.get(), comp.c_str(), &lst, AT_SYMLINK_NOFOLLOW) != 0 || ::fstat(fd.get(), &st) != 0) {
            return sys_error("cannot stat", walked, errno);
        }
        bool owner_ok = (st.st_uid == 0 || st.st_uid == me) && (lst.st_uid == 0 || lst.st_uid == me);
        bool write_ok = !(st.st_mode & (S_IWGRP | S_IWOTH)) || (st.st_mode & S_ISVTX);
        if (!owner_ok || !write_ok) {
            return error(TIERCKPT_ERR_INVALID,
                         "store_dir={}: {} is {} (uid {}, mode {:o}); every directory above store_dir must be "
                         "root's and writable only by root (or sticky, like /dev/shm): choose another store_dir",
                         path, walked, owner_ok ? "writable by others" : "not root's", st.st_uid, st.st_mode & 07777);
        }
        pfd = std::move(fd);
        at = next + 1;
    }
    const std::string base = path.substr(slash + 1);

    // store_dir itself: the last component may sit in a world-writable
    // directory, so it is never followed.
    auto open_root = [&]() { return UniqueFd(::openat(pfd.get(), base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)); };
    if (create && ::mkdirat(pfd.get(), base.c_str(), 0755) == 0) {
        UniqueFd made = open_root();
        if (made) (void)::fchmod(made.get(), 0755);  // whatever the umask
    } else if (create && errno != EEXIST) {
        return sys_error("cannot create store_dir", path, errno);
    }
    UniqueFd root = open_root();
    int open_errno = root ? 0 : errno;
    if (open_errno == ENOENT) return error(TIERCKPT_ERR_NOT_FOUND, "store_dir {} does not exist", path);
    struct stat st {};
    bool is_dir = root && ::fstat(root.get(), &st) == 0;
    struct stat lst {};
    bool squatted = ::fstatat(pfd.get(), base.c_str(), &lst, AT_SYMLINK_NOFOLLOW) == 0 && lst.st_uid != me;
    if (squatted && create && me == 0) {
        // Another user made it first (possible where the parent is
        // world-writable, e.g. after a reboot before slurmd started). Root
        // may rename it even in a sticky directory: it goes aside, for its
        // owner, and ours is made.
        std::string aside = "." + base + ".squatted." + std::to_string(lst.st_uid) + "." +
                            std::to_string(static_cast<long long>(std::time(nullptr)));
        if (::renameat(pfd.get(), base.c_str(), pfd.get(), aside.c_str()) != 0) {
            return sys_error("cannot move aside the squatted store_dir", path, errno);
        }
        log::error("store_dir {} was made by uid {}, not root; moved it aside as {} and made it again", path,
                   lst.st_uid, aside);
        if (::mkdirat(pfd.get(), base.c_str(), 0755) != 0) return sys_error("cannot create store_dir", path, errno);
        root = open_root();
        open_errno = root ? 0 : errno;
        if (root) (void)::fchmod(root.get(), 0755);
        is_dir = root && ::fstat(root.get(), &st) == 0;
    }
    if (!root) {
        if (open_errno == ELOOP || open_errno == ENOTDIR) {
            return error(TIERCKPT_ERR_INVALID,
                         "store_dir {} is a symlink or not a directory (planted by someone?); refusing to use it: "
                         "remove it and tierckpt creates the directory itself",
                         path);
        }
        return sys_error("cannot open store_dir", path, open_errno);
    }
    if (!is_dir) return sys_error("cannot stat store_dir", path, errno);
    if (st.st_uid != me) {
        return error(TIERCKPT_ERR_INVALID,
                     "store_dir {} is owned by uid {}, not by uid {}; refusing to use it: remove it and tierckpt "
                     "creates the directory itself",
                     path, st.st_uid, me);
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        return error(TIERCKPT_ERR_INVALID, "store_dir {} is writable by others (mode {:o}); make it 0755", path,
                     st.st_mode & 07777);
    }
    struct statfs sfs {};
    if (::fstatfs(root.get(), &sfs) != 0) return sys_error("cannot statfs store_dir", path, errno);
    if (sfs.f_type != TMPFS_MAGIC && static_cast<unsigned long>(sfs.f_type) != HUGETLBFS_MAGIC) {
        return error(TIERCKPT_ERR_INVALID,
                     "store_dir {} is not on tmpfs or hugetlbfs (file system type 0x{:x}); node stores must be "
                     "memory: set store_dir= to a directory on a tmpfs such as /dev/shm/tierckpt",
                     path, static_cast<unsigned long>(sfs.f_type));
    }

    const std::string priv_shown = path + "/" + kPrivateDir;
    auto priv = private_dir(root.get(), kPrivateDir, priv_shown, create);
    if (!priv) return priv.status();
    auto reserved = private_dir(priv->get(), kReservedDir, priv_shown + "/" + kReservedDir, create);
    if (!reserved) return reserved.status();
    auto expire = private_dir(priv->get(), kExpireDir, priv_shown + "/" + kExpireDir, create);
    if (!expire) return expire.status();
    auto trash = private_dir(priv->get(), kTrashDir, priv_shown + "/" + kTrashDir, create);
    if (!trash) return trash.status();
    UniqueFd lock(::openat(priv->get(), kLockFile, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600));
    if (!lock) return sys_error("cannot open", priv_shown + "/" + kLockFile, errno);
    return StoreDir(path, std::move(root), std::move(*priv), std::move(*reserved), std::move(*expire),
                    std::move(*trash), std::move(lock));
}

// ---------------------------------------------------------------- records
std::optional<Reservation> StoreDir::read_reservation(std::uint64_t job_id) {
    std::string name = std::to_string(job_id);
    auto text = read_small_file_at(reserved_.get(), name, name, kMaxMarkBytes, O_NOFOLLOW);
    if (!text) return std::nullopt;
    auto r = parse_reservation(*text);
    if (!r) {
        log::warn("{}/{}/{}/{}: {}", path_, kPrivateDir, kReservedDir, name, r.status().message());
        return std::nullopt;
    }
    return *r;
}

namespace {

// Writes a one-line file atomically (a temporary, then rename).
Status write_mark(int dirfd, const std::string &name, const std::string &text, const std::string &shown) {
    std::string tmp = name + ".tmp";
    UniqueFd fd(::openat(dirfd, tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) return sys_error("cannot write", shown, errno);
    if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
        int err = errno;
        ::unlinkat(dirfd, tmp.c_str(), 0);
        return sys_error("cannot write", shown, err);
    }
    fd.reset();
    if (::renameat(dirfd, tmp.c_str(), dirfd, name.c_str()) != 0) return sys_error("cannot rename", shown, errno);
    return Status::ok();
}

}  // namespace

Status StoreDir::write_reservation(std::uint64_t job_id, const Reservation &r) {
    std::string name = std::to_string(job_id);
    return write_mark(reserved_.get(), name, format_reservation(r),
                      path_ + "/" + kPrivateDir + "/" + kReservedDir + "/" + name);
}

Status StoreDir::mark_expiring(std::uint64_t job_id, std::int64_t when) {
    auto held = lock();
    if (!held) return held.status();
    std::string name = std::to_string(job_id);
    return write_mark(expire_.get(), name, std::to_string(when) + "\n",
                      path_ + "/" + kPrivateDir + "/" + kExpireDir + "/" + name);
}

Status StoreDir::clear_expiry_locked(std::uint64_t job_id) {
    std::string name = std::to_string(job_id);
    if (::unlinkat(expire_.get(), name.c_str(), 0) != 0 && errno != ENOENT) {
        return sys_error("cannot remove expiry mark", name, errno);
    }
    return Status::ok();
}

Status StoreDir::clear_expiry(std::uint64_t job_id) {
    auto held = lock();
    if (!held) return held.status();
    return clear_expiry_locked(job_id);
}

bool StoreDir::has_job(std::uint64_t job_id) {
    struct stat st {};
    return ::fstatat(root_.get(), job_dir_name(job_id).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
}

Result<std::vector<JobStore>> StoreDir::list() {
    auto held = lock();
    if (!held) return held.status();
    return list_locked();
}

Result<std::vector<JobStore>> StoreDir::list_locked() {
    auto names = read_dir(root_.get(), path_);
    if (!names) return names.status();
    std::vector<JobStore> out;
    for (const auto &name : *names) {
        JobStore js;
        if (!parse_job_dir(name.c_str(), js.job_id)) continue;
        struct stat st {};
        if (::fstatat(root_.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        js.uid = st.st_uid;
        if (auto r = read_reservation(js.job_id)) {
            js.uid = r->uid;
            js.bytes = r->bytes;
            js.reserved = true;
        }
        std::string mark = std::to_string(js.job_id);
        auto text = read_small_file_at(expire_.get(), mark, mark, kMaxMarkBytes, O_NOFOLLOW);
        if (text) {
            // An unreadable mark never means "expired": that could free the
            // store of a job that runs. It stays until its job ends again
            // or another job needs the memory.
            js.expires = parse_mark(*text);
            if (js.expires < 0) {
                log::warn("{}/{}/{}/{}: not a time; the store of job {} is kept", path_, kPrivateDir, kExpireDir,
                          mark, js.job_id);
                js.expires = 0;
            }
        } else if (text.status().code() != TIERCKPT_ERR_NOT_FOUND) {
            log::warn("job {}: {}; its store is kept", js.job_id, text.status().message());
        }
        out.push_back(js);
    }
    std::sort(out.begin(), out.end(), [](const JobStore &a, const JobStore &b) { return a.job_id < b.job_id; });
    return out;
}

// ---------------------------------------------------------------- freeing
Status StoreDir::free_job(std::uint64_t job_id) {
    auto held = lock();
    if (!held) return held.status();
    Status st = free_job_locked(job_id);
    empty_trash(2.0);
    return st;
}

Status StoreDir::free_job_locked(std::uint64_t job_id) {
    const std::string name = job_dir_name(job_id), shown = path_ + "/" + name;
    const std::string id = std::to_string(job_id);
    Status result;
    UniqueFd dir(::openat(root_.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (dir) {
        // The memory first: truncating the store frees it whatever else
        // refers to the file (a hard link its user made, a mapping of a
        // process that outlived the job). Only the job user's own file
        // (a directory of an older version may hold anything).
        struct stat dst {};
        auto rec = read_reservation(job_id);
        uid_t owner = rec ? rec->uid : (::fstat(dir.get(), &dst) == 0 ? dst.st_uid : static_cast<uid_t>(-1));
        struct stat st {};
        auto fd = open_regular_at(dir.get(), kStoreFile, shown + "/" + kStoreFile, O_RDWR, &st);
        if (fd && st.st_uid == owner && ::ftruncate(fd->get(), 0) != 0) {
            log::warn("cannot truncate {}/{}: {}", shown, kStoreFile, std::strerror(errno));
        }
        dir.reset();
        // Then the directory goes aside at once (the job id is free again)
        // and is emptied from there, however deep.
        if (::renameat(root_.get(), name.c_str(), trash_.get(), trash_name(name).c_str()) != 0) {
            result = sys_error("cannot move aside", shown, errno);
        }
    } else if (errno == ENOTDIR || errno == ELOOP) {
        // Not a directory (nothing tierckpt makes): the name goes.
        if (::unlinkat(root_.get(), name.c_str(), 0) != 0 && errno != ENOENT) result = sys_error("cannot remove", shown, errno);
    } else if (errno != ENOENT) {
        result = sys_error("cannot open", shown, errno);
    }
    if (::unlinkat(reserved_.get(), id.c_str(), 0) != 0 && errno != ENOENT && result) {
        result = sys_error("cannot remove the reservation of job", id, errno);
    }
    Status cleared = clear_expiry_locked(job_id);
    if (!cleared && result) result = cleared;
    return result;
}

// Removal without a depth limit or one descriptor per level: a directory's
// subdirectories move up into trash/ (flattened) and are emptied in later
// passes. Goes on past entries it cannot remove; stops after `seconds`.
void StoreDir::empty_trash(double seconds) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    const std::string shown = path_ + "/" + kPrivateDir + "/" + kTrashDir;
    bool progress = true;
    while (progress && std::chrono::steady_clock::now() < deadline) {
        progress = false;
        auto names = read_dir(trash_.get(), shown);
        if (!names || names->empty()) return;
        for (const auto &n : *names) {
            if (std::chrono::steady_clock::now() >= deadline) break;
            if (::unlinkat(trash_.get(), n.c_str(), 0) == 0) {
                progress = true;
                continue;
            }
            if (errno != EISDIR && errno != EPERM) continue;
            UniqueFd d(::openat(trash_.get(), n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (!d) continue;
            int dup = ::dup(d.get());
            DIR *it = dup >= 0 ? ::fdopendir(dup) : nullptr;
            if (!it) {
                if (dup >= 0) ::close(dup);
                continue;
            }
            while (struct dirent *e = ::readdir(it)) {
                if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
                if (::unlinkat(d.get(), e->d_name, 0) == 0 ||
                    ((errno == EISDIR || errno == EPERM) &&
                     ::renameat(d.get(), e->d_name, trash_.get(), trash_name("t").c_str()) == 0)) {
                    progress = true;
                }
                if (std::chrono::steady_clock::now() >= deadline) break;
            }
            ::closedir(it);
            if (::unlinkat(trash_.get(), n.c_str(), AT_REMOVEDIR) == 0) progress = true;
        }
    }
    if (auto left = read_dir(trash_.get(), shown); left && !left->empty()) {
        log::info("{}: {} entries left to remove; the next free goes on", shown, left->size());
    }
}

Result<unsigned> StoreDir::free_expired(std::int64_t now) {
    auto held = lock();
    if (!held) return held.status();
    auto stores = list_locked();
    if (!stores) return stores.status();
    unsigned freed = 0;
    Status first_error;
    for (const auto &js : *stores) {
        // No reservation: a directory of an older version, or a creation
        // that died (a creation holds the lock until it has written one).
        bool orphan = !js.reserved;
        if (!orphan && (js.expires == 0 || js.expires > now)) continue;
        Status st = free_job_locked(js.job_id);
        if (!st) {
            log::warn("freeing the store of job {}: {}", js.job_id, st.message());
            if (first_error) first_error = st;
            continue;
        }
        log::info("freed the {} store of job {} ({})", orphan ? "unreserved" : "expired", js.job_id,
                  format_size(js.bytes));
        ++freed;
    }
    // Marks and reservations whose job directory is gone.
    for (int dirfd : {expire_.get(), reserved_.get()}) {
        if (auto marks = read_dir(dirfd, path_ + "/" + kPrivateDir)) {
            for (const auto &m : *marks) {
                std::uint64_t id = 0;
                if (!parse_job_dir(("job." + m).c_str(), id) || !has_job(id)) ::unlinkat(dirfd, m.c_str(), 0);
            }
        }
    }
    empty_trash(2.0);
    if (!first_error) return first_error;
    return freed;
}

Result<std::uint64_t> StoreDir::fs_free() {
    struct statvfs vfs {};
    if (::fstatvfs(root_.get(), &vfs) != 0) return sys_error("cannot statvfs", path_, errno);
    return static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
}

Status StoreDir::make_room(std::uint64_t need, std::uint64_t except_job, std::uint64_t available) {
    auto free_fs = fs_free();
    if (!free_fs) return free_fs.status();
    std::uint64_t have = std::min(available, *free_fs);
    if (need <= have) return Status::ok();
    // Stores kept only for a possible requeue never starve a running job:
    // evict them, soonest to expire first.
    auto stores = list_locked();
    if (!stores) return stores.status();
    std::vector<JobStore> waiting;
    for (const auto &js : *stores) {
        if (js.job_id != except_job && js.expires != 0) waiting.push_back(js);
    }
    std::sort(waiting.begin(), waiting.end(), [](const JobStore &a, const JobStore &b) { return a.expires < b.expires; });
    for (const auto &js : waiting) {
        if (need <= have) break;
        Status st = free_job_locked(js.job_id);
        if (!st) {
            log::warn("evicting the store of finished job {}: {}", js.job_id, st.message());
            continue;
        }
        log::info("evicted the store of finished job {} ({}) to make room", js.job_id, format_size(js.bytes));
        have += js.bytes;
    }
    free_fs = fs_free();
    if (!free_fs) return free_fs.status();
    if (need > *free_fs) {
        return error(TIERCKPT_ERR_NO_MEMORY,
                     "the store needs {} but the file system of store_dir {} has {} free; ask for less with "
                     "--ckpt-mem, or have the admin enlarge that tmpfs",
                     format_size(need), path_, format_size(*free_fs));
    }
    if (need > have) {
        return error(TIERCKPT_ERR_NO_MEMORY,
                     "the store needs {} but this node has {} of memory available; ask for less with --ckpt-mem",
                     format_size(need), format_size(have));
    }
    return Status::ok();
}

// ---------------------------------------------------------------- create or attach
Result<StoreInfo> StoreDir::create_or_attach(const StoreRequest &req) {
    UniqueFd fd;
    Result<StoreInfo> info = error(TIERCKPT_ERR_INTERNAL, "no store attempted");
    {
        auto held = lock();
        if (!held) return held.status();
        info = create_or_attach_locked(req, fd);
        empty_trash(1.0);
    }
    if (!info || !req.prefault) return info;
    // Touch every page once so that the memory is resident now, not at the
    // first checkpoint (hugetlbfs reserves on fallocate). Outside the lock:
    // other steps need not wait for it. The kernel populates: a store cut
    // short meanwhile ends the populating, it raises no signal here.
    void *p = ::mmap(nullptr, info->bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd.get(), 0);
    if (p == MAP_FAILED) {
        Status st = sys_error("cannot map", info->path, errno);
        if (info->created) {
            auto held = lock();
            if (held) (void)free_job_locked(req.job_id);
        }
        return st;
    }
    ::munmap(p, info->bytes);
    return info;
}

Result<StoreInfo> StoreDir::create_or_attach_locked(const StoreRequest &req, UniqueFd &fd) {
    const std::string name = job_dir_name(req.job_id);
    const std::string dir_path = path_ + "/" + name;
    const std::string file_path = dir_path + "/" + kStoreFile;

    // The job's directory is reused only when this version of tierckpt made
    // it for this user: root's, with a reservation for the job's uid.
    // Anything else (a stale store of another user's job with the same id,
    // a directory of an older version) is freed first.
    auto rec = read_reservation(req.job_id);
    UniqueFd dir(::openat(root_.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    bool exists = dir || (errno != ENOENT);
    if (exists) {
        struct stat st {};
        const char *why = nullptr;
        if (!dir) why = "not a directory";
        else if (::fstat(dir.get(), &st) != 0 || st.st_uid != ::geteuid()) why = "not made by tierckpt";
        else if (!rec) why = "without a reservation record";
        else if (rec->uid != req.uid) why = "reserved for another uid";
        if (why) {
            log::warn("{} is {}: freeing it before job {} of uid {} uses it", dir_path, why, req.job_id, req.uid);
            dir.reset();
            Status rm = free_job_locked(req.job_id);
            if (!rm) return rm;
            rec.reset();
        }
    } else if (rec) {
        (void)::unlinkat(reserved_.get(), std::to_string(req.job_id).c_str(), 0);  // its directory is gone
        rec.reset();
    }

    bool made_dir = false;
    if (!dir) {
        Status room = make_room(req.bytes, req.job_id, req.mem.available);
        if (!room) return room;
        if (::mkdirat(root_.get(), name.c_str(), kJobDirMode) != 0) return sys_error("cannot create", dir_path, errno);
        made_dir = true;
        dir.reset(::openat(root_.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!dir) {
            int err = errno;
            (void)free_job_locked(req.job_id);
            return sys_error("cannot open", dir_path, err);
        }
        Reservation r{req.uid, req.gid, req.bytes};
        Status st = ::fchmod(dir.get(), kJobDirMode) == 0 ? write_reservation(req.job_id, r)
                                                          : sys_error("cannot set the mode of", dir_path, errno);
        if (!st) {
            (void)free_job_locked(req.job_id);
            return st;
        }
        rec = r;
    }
    auto undo = [&](Status st) -> Status {
        if (made_dir) {
            Status rm = free_job_locked(req.job_id);
            if (!rm) log::error("cleaning up after a failed store: {}", rm.message());
        }
        return st;
    };

    const std::uint64_t reserved = rec->bytes;
    if (req.bytes > reserved) {
        return error(TIERCKPT_ERR_INVALID,
                     "this job's store on this node holds {} and keeps that size for the job's life, so its "
                     "checkpoints survive; this step asks for {}: ask for {} or less (or leave --ckpt-mem's size as "
                     "the first step had it)",
                     format_size(reserved), format_size(req.bytes), format_size(reserved));
    }
    StoreInfo info;
    info.path = file_path;
    info.bytes = reserved;
    struct stat st {};
    auto opened = open_regular_at(dir.get(), kStoreFile, file_path, O_RDWR, &st);
    if (opened) {
        fd = std::move(*opened);
        if (st.st_uid != req.uid) {
            return undo(error(TIERCKPT_ERR_INVALID, "{} belongs to uid {}, not to the job's uid {}; refusing to use it",
                              file_path, st.st_uid, req.uid));
        }
        // Its user owns the file and may have resized it: the reservation
        // is the size, here and in the locked-memory limit.
        auto have = static_cast<std::uint64_t>(st.st_size);
        if (have != reserved) {
            log::warn("{} was resized to {} by its user; restoring the reserved {}", file_path, format_size(have),
                      format_size(reserved));
            if (::ftruncate(fd.get(), static_cast<off_t>(reserved)) != 0) {
                return undo(sys_error("cannot restore the size of", file_path, errno));
            }
        }
        // A store cut short mid-allocation (the step that made it died), or
        // cut by its user: allocate the rest now.
        if (have != reserved || static_cast<std::uint64_t>(st.st_blocks) * 512 < reserved) {
            int rc = ::posix_fallocate(fd.get(), 0, static_cast<off_t>(reserved));
            if (rc != 0) return undo(sys_error("cannot allocate", file_path, rc));
        }
    } else if (opened.status().code() == TIERCKPT_ERR_NOT_FOUND) {
        if (!made_dir) {
            Status room = make_room(reserved, req.job_id, req.mem.available);
            if (!room) return room;
        }
        fd.reset(::openat(dir.get(), kStoreFile, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!fd) return undo(sys_error("cannot create", file_path, errno));
        if (::fchown(fd.get(), req.uid, req.gid) != 0 || ::fchmod(fd.get(), 0600) != 0) {
            return undo(sys_error("cannot give the store to its user:", file_path, errno));
        }
        int rc = ::posix_fallocate(fd.get(), 0, static_cast<off_t>(reserved));
        if (rc != 0) {
            fd.reset();
            return undo(error(rc == ENOSPC ? TIERCKPT_ERR_NO_MEMORY : TIERCKPT_ERR_IO,
                              "cannot allocate {} for {}: {}; ask for less with --ckpt-mem", format_size(reserved),
                              file_path, std::strerror(rc)));
        }
        info.created = true;
    } else {
        // Only root writes in the job directory: a link or a FIFO here is
        // not tierckpt's. Refused, never followed or opened for I/O.
        return undo(error(TIERCKPT_ERR_INVALID, "{}; refusing to use it as the store", opened.status().message()));
    }
    Status cleared = clear_expiry_locked(req.job_id);  // the job is running again
    if (!cleared) log::warn("{}", cleared.message());
    return info;
}

}  // namespace tck::spank
