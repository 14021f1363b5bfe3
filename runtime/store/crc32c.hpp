// CRC32C (Castagnoli), the checksum of every shard: SSE4.2's crc32
// instruction where the CPU has it (checked once at run time; three
// interleaved streams over large buffers), a table otherwise. Both give
// the same values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/status.hpp"

namespace tck {

// Continues a CRC: crc32c(data, n, crc32c(prev...)) == crc32c of the
// concatenation. Start with 0.
std::uint32_t crc32c(const void *data, std::size_t n, std::uint32_t crc = 0);

// The portable version, for tests and machines without SSE4.2.
std::uint32_t crc32c_portable(const void *data, std::size_t n, std::uint32_t crc = 0);

bool crc32c_has_hardware();

// The CRC of A followed by B, from crc32c(A), crc32c(B) and B's length.
std::uint32_t crc32c_combine(std::uint32_t crc_a, std::uint32_t crc_b, std::uint64_t bytes_b);

// crc32c(data, n, crc) computed by up to `threads` threads (this one
// among them) over consecutive parts of at least 8 MiB, joined with
// crc32c_combine: for checksums the application waits for (restore's
// verification, the checksum behind save's copy). Falls back to fewer
// threads when none can be started.
std::uint32_t crc32c_parallel(const void *data, std::size_t n, unsigned threads, std::uint32_t crc = 0);

// CRC32C of [off, off + len) of the open file fd, read with pread in pieces
// of `piece` bytes (one buffer of that size at most, whatever len claims).
// An error (read_exact_at's) where the file ends first; `shown` names it.
Result<std::uint32_t> crc32c_file(int fd, std::uint64_t off, std::uint64_t len, std::size_t piece,
                                  const std::string &shown);

}  // namespace tck
