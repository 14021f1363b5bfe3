// A shard as restore hands it on: verified (checksum and manifest), lying in
// this node's store or in memory it owns. Plain values, no thread of their
// own: they live on the application's thread.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "common/run_report.hpp"
#include "store/store_format.hpp"

namespace tck {

// Where a rank's shard came from.
enum class Source { none, local, peer, persistent };
const char *source_name(Source s);
// Adds bytes to the breakdown's count for source (none: nothing).
void count_bytes(report::RestoreBreakdown &parts, Source source, std::uint64_t bytes);

struct RestoreResult {
    bool found = false;
    std::uint64_t version = 0;
    Source source = Source::none;  // where this rank's shard came from
};

// The store slot a shard lies in: its own, or a copy just pulled into a free
// slot (no save can take it while the shard is held: a save drops it first).
struct HeldSlot {
    std::uint32_t slot = 0;
    std::uint64_t version = 0;
    std::uint32_t rank = 0;
};

struct Shard {
    std::uint64_t version = 0;
    Source source = Source::none;
    const std::uint8_t *payload = nullptr;  // manifest, then the regions back to back
    std::uint64_t bytes = 0;
    std::uint32_t crc = 0;
    std::vector<std::uint8_t> owned;  // the bytes, when read over MPI or from the persistent tier
    std::optional<HeldSlot> slot;     // the store slot payload lies in, if it does
    std::vector<store::RegionEntry> regions;  // from its manifest, in order

    Shard() = default;
    Shard(const Shard &) = delete;  // payload may point into owned
    Shard &operator=(const Shard &) = delete;
    Shard(Shard &&) = default;      // a moved vector keeps its buffer
    Shard &operator=(Shard &&) = default;
};

}  // namespace tck
