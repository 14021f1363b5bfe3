// What the job holds, as restore sees it: every shard in every node store
// of the job, and the versions complete in the persistent tier.
//
// Thread: the application's; every function here is collective.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/status.hpp"
#include "lib/job.hpp"
#include "store/persist.hpp"
#include "store/store_format.hpp"

namespace tck {

// One shard somewhere in the job's node stores. Plain bytes: it travels
// through MPI_Allgatherv.
struct InventoryEntry {
    std::uint64_t version;
    std::uint64_t payload_bytes;
    std::uint32_t rank;
    std::uint32_t holder;  // comm rank of the leader of the node whose store holds it
    std::uint32_t slot;
    std::uint32_t crc;
    std::uint32_t committed;  // the owner marked this version committed
    std::uint32_t nregions;   // regions in the shard
    std::uint64_t offset;     // where the payload lies in the holder's store (for transport reads)
    std::uint32_t world = 0;  // ranks of the job that saved it
    std::uint32_t pad = 0;
};

struct Inventory {
    std::vector<InventoryEntry> entries;  // shards of a job of this world size, every node's
    std::vector<InventoryEntry> other;    // shards of jobs of other world sizes (elastic restore)
    std::uint64_t store_other_world = 0;  // some store holds shards of a job of this many ranks (0: none)
    std::set<std::uint64_t> persistent;   // versions complete in the persistent tier, of this world size
    std::uint64_t persist_other_version = 0;  // the newest complete one of another world size there
    std::uint64_t persist_other_world = 0;    // and that size (0: none)
    // Every version complete there of another world size, with that size
    // (elastic restore).
    std::set<std::pair<std::uint64_t, std::uint32_t>> persistent_other;
};

// Each node's leader lists its store; rank 0 lists the persistent tier
// (persist_dir "": none).
Result<Inventory> take_inventory(const JobLayout &job, store::StoreFile &store, const std::string &persist_dir);

// Rank 0 reads version's MANIFEST in the persistent tier and checks it is
// of saved_world ranks; every rank gets every line (elastic restore: a rank
// reads other ranks' shards). An empty vector on every rank when it cannot
// be read or is of another size (logged by rank 0).
Result<std::vector<persist::ShardEntry>> persistent_lines(const JobLayout &job, const std::string &persist_dir,
                                                          std::uint64_t version, std::uint32_t saved_world);

// Rank 0 reads version's MANIFEST in the persistent tier; each rank gets its
// shard's line. nullopt on every rank when it cannot be read or is of
// another world size (logged by rank 0).
Result<std::optional<persist::ShardEntry>> persistent_shard(const JobLayout &job, const std::string &persist_dir,
                                                            std::uint64_t version);

}  // namespace tck
