#include "small_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

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
