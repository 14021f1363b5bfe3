// One attempt to bring every rank's shard of a planned version into node
// memory and verify it: from this node's store, from a peer's store over the
// transport (the worker pulls it into a free slot here, checksummed behind
// the transfer), from the holder over MPI (the holder verifies what it
// sends), or from the persistent tier.
//
// Thread: the application's; transfer_shard is collective (holders send to
// the ranks that read over MPI). The pull runs on the worker as a task.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.hpp"
#include "lib/job.hpp"
#include "lib/replication/replicator.hpp"
#include "lib/replication/worker.hpp"
#include "lib/restore/inventory.hpp"
#include "lib/restore/planner.hpp"
#include "lib/restore/shard.hpp"
#include "store/persist.hpp"

namespace tck {

struct TransferContext {
    const JobLayout &job;
    store::StoreFile &store;
    Replicator &repl;
    Worker &worker;
    const std::string &persist_dir;
};

struct TransferOutcome {
    Status status;       // this rank's; the shard is valid only when ok
    Shard shard;
    Source source = Source::none;
    std::string where;   // for messages: "this node's store", "rank 2's node over ucx", "the persistent tier"
    std::uint64_t bytes = 0;  // this rank's shard
    const char *via = "none"; // store, ucx, ofi, mpi or file (the run report)
    bool pulled = false;      // came over the transport
    double verify_ms = 0;     // of this call, in checksums (this rank's shard, and those it sends as holder)
    // Found bad, for the next plan: the inventory entry read (-1: none),
    // or the persistent tier's copy of this version.
    int bad_entry = -1;
    bool persist_bad = false;
};

// Collective. expect_bytes: the size the registered regions make (a shard
// from the persistent tier of another size is refused before it is read);
// nullopt in a fetch, which takes whatever the checkpoint holds. A rank
// whose plan entry is Plan::kFromPersistent reads the shard of saved_rank
// (default: its own rank) described by pentry. needs: the byte ranges of
// the payload this rank will use ([begin, end), manifest included), when
// it uses only part of it (elastic restore): a shard read from this node's
// store with a piece table is then verified only in the pieces those
// ranges touch (tierckpt-store(5)); a shard that moves is verified whole.
TransferOutcome transfer_shard(TransferContext &ctx, const std::vector<InventoryEntry> &inv, const Plan &plan,
                               const persist::ShardEntry &pentry, std::optional<std::uint64_t> expect_bytes,
                               std::optional<std::uint32_t> saved_rank = std::nullopt,
                               const std::vector<std::pair<std::uint64_t, std::uint64_t>> *needs = nullptr);

}  // namespace tck
