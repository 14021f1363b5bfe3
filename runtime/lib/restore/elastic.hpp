// Elastic restore: a version saved by another number of ranks, restored
// onto this job's ranks region by region, from wherever the saved shards
// lie in the job's node stores (this node's store, or a peer's over the
// transport or MPI) or, for shards with no copy in memory, the persistent
// tier. Only sliced and replicated regions move between
// ranks (plan_reslice, reslice.hpp); opaque ones are refused with the fix.
//
// Thread: the application's; restore_resliced is collective.
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.hpp"
#include "lib/restore/inventory.hpp"
#include "lib/restore/restorer.hpp"

namespace tck {

// For each of the saved_world ranks that saved version: the indices into
// inv of its shard's copies not marked bad, in inventory order. Pure.
std::vector<std::vector<int>> saved_copies(const std::vector<InventoryEntry> &inv, const std::vector<char> &bad,
                                           std::uint64_t version, std::uint32_t saved_world);

// Which of a saved shard's copies a rank reads: one in its own node's store
// (held by my_leader), else copies spread over the readers by rank. -1
// when there is none. Pure.
int pick_copy(const std::vector<InventoryEntry> &inv, const std::vector<int> &copies, int my_leader, int my_rank);

// Collective. Tries version, saved by saved_world ranks:
//  1. the saved shards' manifests, each read by the node that holds its
//     first copy (or, from the persistent tier, by rank r % world) and
//     gathered on every rank (bytes: 88 per region and saved rank,
//     tierckpt-store(5)); in_persistent: the persistent tier holds version
//     complete, and serves the saved shards memory lacks;
//  2. plan_reslice on each rank, for req.layout;
//  3. rounds of transfer_shard: in round k every rank brings in the k-th
//     saved shard it needs, verifies it (its checksum, and its manifest
//     against the one planned from) and req.place copies the planned bytes
//     into its regions.
// A copy found bad is marked in bad (by entry of inv) and the version tried
// again without it. true: restored, out filled; false: the version cannot
// be restored (a shard with no good copy, a saved layout that breaks the
// rules), an older one may; an error, the same on every rank: the
// registered regions cannot be filled from this checkpoint
// (TIERCKPT_ERR_INVALID, with the fix) or MPI failed. Regions may have been
// written in part when it returns false.
// With req.any_world (a fetch), no manifest is gathered and nothing
// planned: each rank brings in saved rank (rank % saved_world)'s shard,
// verifies its checksum and hands it to req.use, in one round.
Result<bool> restore_resliced(TransferContext &ctx, const RestoreRequest &req, const std::vector<InventoryEntry> &inv,
                              std::vector<char> &bad, std::uint64_t version, std::uint32_t saved_world,
                              bool in_persistent, RestoreOutcome &out);

}  // namespace tck
