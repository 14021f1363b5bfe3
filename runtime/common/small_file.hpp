// Reading a small file whole: a manifest, a sidecar, a config file.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <string>

#include "status.hpp"

namespace tck {

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
