#include "store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "../runtime/common/log.hpp"
#include "../runtime/common/size.hpp"

#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif

namespace tck::spank {

namespace {

constexpr const char *kExpireDir = ".expire";
constexpr const char *kStoreFile = "store";
constexpr int kMaxTreeDepth = 32;

Status sys_error(std::string_view what, const std::string &path, int err) {
    return error(TIERCKPT_ERR_IO, "{} {}: {}", what, path, std::strerror(err));
}

// Parses "job.<digits>"; returns false for anything else.
bool parse_job_dir(const char *name, std::uint64_t &job_id) {
    std::string_view s(name);
    if (s.substr(0, 4) != "job." || s.size() == 4 || s.size() > 24) return false;
    std::uint64_t n = 0;
    for (char c : s.substr(4)) {
        if (c < '0' || c > '9') return false;
        n = n * 10 + static_cast<unsigned>(c - '0');
    }
    job_id = n;
    return true;
}

// The names in directory `name` of `dirfd` (not "." and ".."), opened
// without following a symlink.
Result<std::vector<std::string>> read_dir_at(int dirfd, const char *name, const std::string &shown) {
    int fd = ::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
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

// Removes `name` in `dirfd` and, for a directory, everything below it,
// without following symlinks (unlinkat removes the link, not its target).
Status remove_tree_at(int dirfd, const char *name, const std::string &shown, int depth = 0) {
    if (::unlinkat(dirfd, name, 0) == 0 || errno == ENOENT) return Status::ok();
    if (errno != EISDIR && errno != EPERM) return sys_error("cannot remove", shown, errno);
    if (depth > kMaxTreeDepth) return error(TIERCKPT_ERR_IO, "cannot remove {}: nested too deep", shown);
    UniqueFd fd(::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) return sys_error("cannot open", shown, errno);
    auto names = read_dir_at(fd.get(), ".", shown);
    if (!names) return names.status();
    for (const auto &n : *names) {
        Status st = remove_tree_at(fd.get(), n.c_str(), shown + "/" + n, depth + 1);
        if (!st) return st;
    }
    if (::unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT) return sys_error("cannot remove", shown, errno);
    return Status::ok();
}

Result<std::int64_t> read_expiry(int expire_fd, std::uint64_t job_id) {
    std::string name = std::to_string(job_id);
    UniqueFd fd(::openat(expire_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    if (!fd) {
        if (errno == ENOENT) return std::int64_t{0};
        return sys_error("cannot open expiry mark", name, errno);
    }
    char buf[32] = {};
    ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
    if (n <= 0) return std::int64_t{1};  // unreadable mark: treat as long expired
    return static_cast<std::int64_t>(std::strtoll(buf, nullptr, 10));
}

}  // namespace

std::string job_dir_name(std::uint64_t job_id) { return "job." + std::to_string(job_id); }

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

Result<StoreDir> StoreDir::open(const std::string &path, bool create) {
    auto slash = path.rfind('/');
    if (path.empty() || path[0] != '/' || slash == std::string::npos || slash + 1 == path.size()) {
        return error(TIERCKPT_ERR_INVALID, "store_dir={}: expected an absolute path below a tmpfs mount", path);
    }
    std::string parent = slash == 0 ? "/" : path.substr(0, slash);
    std::string base = path.substr(slash + 1);

    // The parent is the admin's (e.g. /dev/shm); the last component may sit
    // in a world-writable directory, so it is never followed.
    UniqueFd pfd(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!pfd) return sys_error("cannot open the parent of store_dir", parent, errno);
    if (create && ::mkdirat(pfd.get(), base.c_str(), 0755) != 0 && errno != EEXIST) {
        return sys_error("cannot create store_dir", path, errno);
    }
    UniqueFd root(::openat(pfd.get(), base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!root) {
        if (errno == ELOOP || errno == ENOTDIR) {
            return error(TIERCKPT_ERR_INVALID,
                         "store_dir {} is a symlink or not a directory (planted by someone?); refusing to use it: "
                         "remove it and tierckpt creates the directory itself",
                         path);
        }
        if (errno == ENOENT && !create) return error(TIERCKPT_ERR_NOT_FOUND, "store_dir {} does not exist", path);
        return sys_error("cannot open store_dir", path, errno);
    }
    struct stat st {};
    if (::fstat(root.get(), &st) != 0) return sys_error("cannot stat store_dir", path, errno);
    if (st.st_uid != ::geteuid()) {
        return error(TIERCKPT_ERR_INVALID,
                     "store_dir {} is owned by uid {}, not by uid {}; refusing to use it: remove it and tierckpt "
                     "creates the directory itself",
                     path, st.st_uid, ::geteuid());
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
    if (create && ::mkdirat(root.get(), kExpireDir, 0700) != 0 && errno != EEXIST) {
        return sys_error("cannot create", path + "/" + kExpireDir, errno);
    }
    UniqueFd expire(::openat(root.get(), kExpireDir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!expire) {
        if (errno == ENOENT && !create) return error(TIERCKPT_ERR_NOT_FOUND, "{}/{} does not exist", path, kExpireDir);
        return sys_error("cannot open", path + "/" + kExpireDir, errno);
    }
    if (::fstat(expire.get(), &st) != 0 || st.st_uid != ::geteuid() || (st.st_mode & 077)) {
        return error(TIERCKPT_ERR_INVALID, "{}/{} is not a private directory of uid {}; remove it", path, kExpireDir,
                     ::geteuid());
    }
    return StoreDir(path, std::move(root), std::move(expire));
}

Result<std::uint64_t> StoreDir::fs_free() {
    struct statvfs vfs {};
    if (::fstatvfs(root_.get(), &vfs) != 0) return sys_error("cannot statvfs", path_, errno);
    return static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
}

Result<std::vector<JobStore>> StoreDir::list() {
    auto names = read_dir_at(root_.get(), ".", path_);
    if (!names) return names.status();
    std::vector<JobStore> out;
    for (const auto &name : *names) {
        JobStore js;
        if (!parse_job_dir(name.c_str(), js.job_id)) continue;
        struct stat st {};
        if (::fstatat(root_.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) continue;
        js.uid = st.st_uid;
        std::string file = name + "/" + kStoreFile;
        if (::fstatat(root_.get(), file.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
            js.bytes = static_cast<std::uint64_t>(st.st_size);
        }
        auto exp = read_expiry(expire_.get(), js.job_id);
        js.expires = exp ? *exp : 1;
        out.push_back(js);
    }
    std::sort(out.begin(), out.end(), [](const JobStore &a, const JobStore &b) { return a.job_id < b.job_id; });
    return out;
}

bool StoreDir::has_job(std::uint64_t job_id) {
    struct stat st {};
    return ::fstatat(root_.get(), job_dir_name(job_id).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
}

Status StoreDir::mark_expiring(std::uint64_t job_id, std::int64_t when) {
    std::string name = std::to_string(job_id), tmp = name + ".tmp";
    UniqueFd fd(::openat(expire_.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) return sys_error("cannot write expiry mark", path_ + "/" + kExpireDir + "/" + tmp, errno);
    std::string text = std::to_string(when) + "\n";
    if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
        return sys_error("cannot write expiry mark", name, errno);
    }
    fd.reset();
    if (::renameat(expire_.get(), tmp.c_str(), expire_.get(), name.c_str()) != 0) {
        return sys_error("cannot rename expiry mark", name, errno);
    }
    return Status::ok();
}

Status StoreDir::clear_expiry(std::uint64_t job_id) {
    std::string name = std::to_string(job_id);
    if (::unlinkat(expire_.get(), name.c_str(), 0) != 0 && errno != ENOENT) {
        return sys_error("cannot remove expiry mark", name, errno);
    }
    return Status::ok();
}

Status StoreDir::free_job(std::uint64_t job_id) {
    std::string name = job_dir_name(job_id);
    Status st = remove_tree_at(root_.get(), name.c_str(), path_ + "/" + name);
    if (!st) return st;
    return clear_expiry(job_id);
}

Result<unsigned> StoreDir::free_expired(std::int64_t now) {
    auto stores = list();
    if (!stores) return stores.status();
    unsigned freed = 0;
    for (const auto &js : *stores) {
        if (js.expires != 0 && js.expires <= now) {
            Status st = free_job(js.job_id);
            if (!st) return st;
            log::info("freed the expired store of job {} ({})", js.job_id, format_size(js.bytes));
            ++freed;
        }
    }
    // Marks whose store is gone already.
    if (auto marks = read_dir_at(expire_.get(), ".", path_ + "/" + kExpireDir)) {
        for (const auto &m : *marks) {
            std::uint64_t id = 0;
            if (m[0] != '.' && parse_job_dir(("job." + m).c_str(), id) && !has_job(id)) {
                ::unlinkat(expire_.get(), m.c_str(), 0);
            }
        }
    }
    return freed;
}

Status StoreDir::make_room(std::uint64_t need, std::uint64_t except_job, std::uint64_t available) {
    auto free_fs = fs_free();
    if (!free_fs) return free_fs.status();
    std::uint64_t have = std::min(available, *free_fs);
    if (need <= have) return Status::ok();
    // Stores kept only for a possible requeue never starve a running job:
    // evict them, soonest to expire first.
    auto stores = list();
    if (!stores) return stores.status();
    std::vector<JobStore> waiting;
    for (const auto &js : *stores) {
        if (js.job_id != except_job && js.expires != 0) waiting.push_back(js);
    }
    std::sort(waiting.begin(), waiting.end(), [](const JobStore &a, const JobStore &b) { return a.expires < b.expires; });
    for (const auto &js : waiting) {
        if (need <= have) break;
        Status st = free_job(js.job_id);
        if (!st) return st;
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

Result<StoreInfo> StoreDir::create_or_attach(const StoreRequest &req) {
    const std::string name = job_dir_name(req.job_id);
    const std::string dir_path = path_ + "/" + name;
    const std::string file_path = dir_path + "/" + kStoreFile;

    // The job's directory: reuse it when it is this user's, replace a stale
    // one left by a job of another user with the same id.
    UniqueFd dir(::openat(root_.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir && (errno == ELOOP || errno == ENOTDIR)) {
        return error(TIERCKPT_ERR_INVALID, "{} is a symlink or not a directory; refusing to use it: remove it",
                     dir_path);
    }
    if (dir) {
        struct stat st {};
        if (::fstat(dir.get(), &st) != 0) return sys_error("cannot stat", dir_path, errno);
        if (st.st_uid != req.uid) {
            log::warn("{} belongs to uid {}, not to job {}'s uid {}: removing the stale store", dir_path, st.st_uid,
                      req.job_id, req.uid);
            dir.reset();
            Status rm = free_job(req.job_id);
            if (!rm) return rm;
        }
    }

    bool made_dir = false;
    if (!dir) {
        Status room = make_room(req.bytes, req.job_id, req.mem.available);
        if (!room) return room;
        if (::mkdirat(root_.get(), name.c_str(), 0700) != 0) return sys_error("cannot create", dir_path, errno);
        made_dir = true;
        dir.reset(::openat(root_.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!dir) return sys_error("cannot open", dir_path, errno);
        if (::fchown(dir.get(), req.uid, req.gid) != 0 || ::fchmod(dir.get(), 0700) != 0) {
            int err = errno;
            (void)free_job(req.job_id);
            return sys_error("cannot give the store directory to its user:", dir_path, err);
        }
    }
    auto undo = [&](Status st) -> Status {
        if (made_dir) {
            Status rm = free_job(req.job_id);
            if (!rm) log::error("cleaning up after a failed store: {}", rm.message());
        } else {
            ::unlinkat(dir.get(), kStoreFile, 0);
        }
        return st;
    };

    StoreInfo info;
    info.path = file_path;
    UniqueFd fd(::openat(dir.get(), kStoreFile, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (!fd && errno == ELOOP) {
        return error(TIERCKPT_ERR_INVALID, "{} is a symlink (planted there?); refusing to use it: remove it",
                     file_path);
    }
    if (fd) {
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0) return sys_error("cannot stat", file_path, errno);
        if (!S_ISREG(st.st_mode) || st.st_uid != req.uid || st.st_nlink != 1) {
            return error(TIERCKPT_ERR_INVALID,
                         "{} is not a plain file of uid {} with one link; refusing to use it: remove it", file_path,
                         req.uid);
        }
        auto have = static_cast<std::uint64_t>(st.st_size);
        if (have == 0) {
            fd.reset();  // an empty file: a creation that died; make it again
            ::unlinkat(dir.get(), kStoreFile, 0);
        } else if (req.bytes > have) {
            return error(TIERCKPT_ERR_INVALID,
                         "this job's store on this node holds {} and keeps that size for the job's life, so its "
                         "checkpoints survive; this step asks for {}: ask for {} or less (or leave --ckpt-mem's size "
                         "as the first step had it)",
                         format_size(have), format_size(req.bytes), format_size(have));
        } else {
            info.bytes = have;
            // A store cut short mid-allocation (the step that made it died):
            // allocate the rest now.
            if (static_cast<std::uint64_t>(st.st_blocks) * 512 < have) {
                int rc = ::posix_fallocate(fd.get(), 0, static_cast<off_t>(have));
                if (rc != 0) return sys_error("cannot allocate", file_path, rc);
            }
        }
    }
    if (!fd) {
        if (made_dir == false) {
            Status room = make_room(req.bytes, req.job_id, req.mem.available);
            if (!room) return room;
        }
        fd.reset(::openat(dir.get(), kStoreFile, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!fd) return undo(sys_error("cannot create", file_path, errno));
        if (::fchown(fd.get(), req.uid, req.gid) != 0 || ::fchmod(fd.get(), 0600) != 0) {
            return undo(sys_error("cannot give the store to its user:", file_path, errno));
        }
        int rc = ::posix_fallocate(fd.get(), 0, static_cast<off_t>(req.bytes));
        if (rc != 0) {
            return undo(error(rc == ENOSPC ? TIERCKPT_ERR_NO_MEMORY : TIERCKPT_ERR_IO,
                              "cannot allocate {} for {}: {}; ask for less with --ckpt-mem", format_size(req.bytes),
                              file_path, std::strerror(rc)));
        }
        info.bytes = req.bytes;
        info.created = true;
    }
    if (req.prefault) {
        // Touch every page once so that the memory is resident now, not
        // at the first checkpoint (hugetlbfs reserves on fallocate).
        void *p = ::mmap(nullptr, info.bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd.get(), 0);
        if (p == MAP_FAILED) {
            int err = errno;
            return info.created ? undo(sys_error("cannot map", file_path, err)) : sys_error("cannot map", file_path, err);
        }
        ::munmap(p, info.bytes);
    }
    Status cleared = clear_expiry(req.job_id);  // the job is running again
    if (!cleared) log::warn("{}", cleared.message());
    return info;
}

}  // namespace tck::spank
