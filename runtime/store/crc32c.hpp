// CRC32C (Castagnoli), the checksum of every shard: SSE4.2's crc32
// instruction where the CPU has it (checked once at run time; three
// interleaved streams over large buffers), a table otherwise. Both give
// the same values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

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

// The CRC32C of every consecutive piece of `piece` bytes of a byte stream
// fed in parts of any size (the last piece may be short), and the stream's
// whole CRC32C joined from them with crc32c_combine: one pass over the
// bytes gives both (a shard's per-piece checksums, tierckpt-store(5)).
class PieceCrc {
public:
    explicit PieceCrc(std::uint64_t piece) : piece_(piece ? piece : 1) {}
    // The next n bytes of the stream; whole pieces among them are spread
    // over up to `threads` threads (this one among them) as crc32c_parallel
    // spreads its parts.
    void add(const void *data, std::size_t n, unsigned threads = 1);
    // The pieces' CRCs so far, the last one partial when the stream so far
    // does not end on a piece boundary.
    std::vector<std::uint32_t> pieces() const;
    // The CRC32C of the whole stream so far (0 for none).
    std::uint32_t whole() const;
    std::uint64_t bytes() const { return done_.size() * piece_ + partial_bytes_; }

private:
    std::uint64_t piece_;
    std::vector<std::uint32_t> done_;
    std::uint32_t partial_ = 0;
    std::uint64_t partial_bytes_ = 0;
};

// Joins per-piece CRCs (pieces of `piece` bytes, the last of
// total - (count - 1) * piece) into the CRC of the whole: what a piece
// table is checked against. total must lie in ((count - 1) * piece,
// count * piece]; 0 for no pieces.
std::uint32_t crc32c_join_pieces(const std::uint32_t *crcs, std::size_t count, std::uint64_t piece,
                                 std::uint64_t total);

// CRC32C of [off, off + len) of the open file fd, read with pread in pieces
// of `piece` bytes (one buffer of that size at most, whatever len claims).
// An error (read_exact_at's) where the file ends first; `shown` names it.
Result<std::uint32_t> crc32c_file(int fd, std::uint64_t off, std::uint64_t len, std::size_t piece,
                                  const std::string &shown);

}  // namespace tck
