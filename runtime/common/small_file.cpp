#include "small_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

namespace tck {

Result<UniqueFd> open_regular_at(int dirfd, const std::string &name, const std::string &shown, int flags,
                                 struct stat *st_out, bool follow) {
    UniqueFd fd(::openat(dirfd, name.c_str(), flags | O_NONBLOCK | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW)));
    if (!fd) {
        int err = errno;
        if (err == ENOENT) return error(TIERCKPT_ERR_NOT_FOUND, "{}: no such file", shown);
        if (err == ELOOP) {
            return error(TIERCKPT_ERR_INVALID, "{} is a symbolic link; refusing to follow it: give the file itself",
                         shown);
        }
        return error(TIERCKPT_ERR_IO, "cannot open {}: {}", shown, std::strerror(err));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return error(TIERCKPT_ERR_IO, "cannot stat {}: {}", shown, std::strerror(errno));
    if (!S_ISREG(st.st_mode)) return error(TIERCKPT_ERR_CORRUPT, "{} is not a regular file", shown);
    if (st_out) *st_out = st;
    return fd;
}

Status read_exact_at(int fd, void *dst, std::uint64_t n, std::uint64_t off, const std::string &shown) {
    auto *out = static_cast<std::uint8_t *>(dst);
    std::uint64_t got = 0;
    while (got < n) {
        if (off + got > static_cast<std::uint64_t>(std::numeric_limits<off_t>::max())) {
            return error(TIERCKPT_ERR_CORRUPT, "{}: offset {} is beyond any file", shown, off);
        }
        ssize_t r = ::pread(fd, out + got, static_cast<std::size_t>(n - got), static_cast<off_t>(off + got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return error(TIERCKPT_ERR_IO, "cannot read {}: {}", shown, std::strerror(errno));
        if (r == 0) {
            return error(TIERCKPT_ERR_CORRUPT, "{} ends at {} bytes, before the {} bytes at {} (cut short while read?)",
                         shown, off + got, n, off);
        }
        got += static_cast<std::uint64_t>(r);
    }
    return Status::ok();
}

Result<std::string> read_small_file_at(int dirfd, const std::string &name, const std::string &shown,
                                       std::uint64_t max_bytes, int flags, struct stat *st_out) {
    struct stat st {};
    auto fd = open_regular_at(dirfd, name, shown, O_RDONLY, &st, (flags & O_NOFOLLOW) == 0);
    if (!fd) return fd.status();
    if (static_cast<std::uint64_t>(st.st_size) > max_bytes) {
        return error(TIERCKPT_ERR_CORRUPT, "{} is too large ({} bytes)", shown, st.st_size);
    }
    std::string text(static_cast<std::size_t>(st.st_size), '\0');
    std::size_t got = 0;
    while (got < text.size()) {
        ssize_t r = ::pread(fd->get(), text.data() + got, text.size() - got, static_cast<off_t>(got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return error(TIERCKPT_ERR_IO, "cannot read {}: {}", shown, std::strerror(errno));
        if (r == 0) break;
        got += static_cast<std::size_t>(r);
    }
    text.resize(got);
    if (st_out) *st_out = st;
    return text;
}

}  // namespace tck
