// CRC32C (Castagnoli), the checksum of every shard: SSE4.2's crc32
// instruction where the CPU has it (checked once at run time), a table
// otherwise. Both give the same values.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tck {

// Continues a CRC: crc32c(data, n, crc32c(prev...)) == crc32c of the
// concatenation. Start with 0.
std::uint32_t crc32c(const void *data, std::size_t n, std::uint32_t crc = 0);

// The portable version, for tests and machines without SSE4.2.
std::uint32_t crc32c_portable(const void *data, std::size_t n, std::uint32_t crc = 0);

bool crc32c_has_hardware();

}  // namespace tck
