#include "small_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "unique_fd.hpp"

namespace tck {

Result<std::string> read_small_file_at(int dirfd, const std::string &name, const std::string &shown,
                                       std::uint64_t max_bytes, int flags, struct stat *st_out) {
    auto sys_error = [&](std::string_view what, int err) {
        return error(TIERCKPT_ERR_IO, "{} {}: {}", what, shown, std::strerror(err));
    };
    UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | flags));
    if (!fd) {
        int err = errno;
        if (err == ENOENT) return error(TIERCKPT_ERR_NOT_FOUND, "{}: no such file", shown);
        return sys_error("cannot open", err);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return sys_error("cannot stat", errno);
    if (!S_ISREG(st.st_mode)) return error(TIERCKPT_ERR_CORRUPT, "{} is not a regular file", shown);
    if (static_cast<std::uint64_t>(st.st_size) > max_bytes) {
        return error(TIERCKPT_ERR_CORRUPT, "{} is too large ({} bytes)", shown, st.st_size);
    }
    std::string text(static_cast<std::size_t>(st.st_size), '\0');
    std::size_t got = 0;
    while (got < text.size()) {
        ssize_t r = ::pread(fd.get(), text.data() + got, text.size() - got, static_cast<off_t>(got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return sys_error("cannot read", errno);
        if (r == 0) break;
        got += static_cast<std::size_t>(r);
    }
    text.resize(got);
    if (st_out) *st_out = st;
    return text;
}

}  // namespace tck
