// Opening and reading files that someone else may control: a manifest, a
// sidecar, a config file, a user's node store.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <string>

#include "status.hpp"
#include "unique_fd.hpp"

namespace tck {

// Opens the regular file `name` (relative to dirfd; AT_FDCWD for a path)
// with O_RDONLY or O_RDWR in `flags` plus O_NONBLOCK and O_CLOEXEC, so a
// FIFO or a device in its place never blocks the caller, and O_NOFOLLOW
// unless `follow` (the last component is never a symlink then; the
// directories above are the caller's to trust). Anything but a regular
// file is refused (TIERCKPT_ERR_CORRUPT) before a byte is read, a link
// (without `follow`) with TIERCKPT_ERR_INVALID; a missing file is
// TIERCKPT_ERR_NOT_FOUND. `st`, when given, receives its stat.
// O_NONBLOCK stays set: it changes nothing for regular files.
Result<UniqueFd> open_regular_at(int dirfd, const std::string &name, const std::string &shown, int flags,
                                 struct stat *st = nullptr, bool follow = false);

// Reads exactly n bytes at offset off of the open file fd into dst (pread,
// in one or more calls). A file that ends first (cut short, maybe while it
// was read) is TIERCKPT_ERR_CORRUPT, saying where it ended; `shown` names it.
Status read_exact_at(int fd, void *dst, std::uint64_t n, std::uint64_t off, const std::string &shown);

// Reads the regular file `name` (relative to dirfd; AT_FDCWD for a path)
// whole, if it holds at most max_bytes. It is opened with O_NONBLOCK, so a
// FIFO or a device in its place never blocks the caller, plus `flags`
// (O_NOFOLLOW where a link must not be followed). `shown` names it in
// messages. A missing file is TIERCKPT_ERR_NOT_FOUND; a file that is not
// regular or too large, TIERCKPT_ERR_CORRUPT. `st`, when given, receives
// the opened file's stat (its owner and mode, for callers that check them).
Result<std::string> read_small_file_at(int dirfd, const std::string &name, const std::string &shown,
                                       std::uint64_t max_bytes, int flags, struct stat *st = nullptr);

}  // namespace tck
