#include "planner.hpp"

#include <algorithm>
#include <functional>

#include "common/env_names.hpp"

namespace tck {

bool Plan::uses_persistent() const {
    return std::find(entry.begin(), entry.end(), kFromPersistent) != entry.end();
}

Planner::Planner(std::vector<InventoryEntry> entries, std::set<std::uint64_t> persistent, std::vector<int> leader_of)
    : entries_(std::move(entries)), bad_(entries_.size(), 0), persistent_(std::move(persistent)),
      leader_of_(std::move(leader_of)) {
    std::set<std::uint64_t, std::greater<>> v(persistent_.begin(), persistent_.end());
    for (const auto &e : entries_) v.insert(e.version);
    candidates_.assign(v.begin(), v.end());
}

std::optional<Plan> Planner::plan(std::uint64_t version) const {
    Plan p;
    p.version = version;
    p.entry.assign(static_cast<std::size_t>(world()), Plan::kFromPersistent);
    for (std::size_t i = 0; i < entries_.size(); ++i) {
        const auto &e = entries_[i];
        if (e.version != version || bad_[i] || e.rank >= static_cast<std::uint32_t>(world())) continue;
        int &chosen = p.entry[e.rank];
        const int own_node = leader_of_[e.rank];
        bool here = static_cast<int>(e.holder) == own_node;
        if (chosen < 0 || (here && static_cast<int>(entries_[static_cast<std::size_t>(chosen)].holder) != own_node)) {
            chosen = static_cast<int>(i);
        }
    }
    if (p.uses_persistent() && !persistent_.count(version)) return std::nullopt;
    return p;
}

void Planner::exclude_copy(int entry) {
    if (entry >= 0 && static_cast<std::size_t>(entry) < bad_.size()) bad_[static_cast<std::size_t>(entry)] = 1;
}

void Planner::exclude_persistent(std::uint64_t version) { persistent_.erase(version); }

std::optional<std::uint64_t> Planner::newest_committed() const {
    std::optional<std::uint64_t> newest;
    for (const auto &e : entries_) {
        if (e.committed && (!newest || e.version > *newest)) newest = e.version;
    }
    return newest;
}

std::string Planner::lost_ranks(std::uint64_t version) const {
    std::vector<char> have(static_cast<std::size_t>(world()), 0);
    for (std::size_t i = 0; i < entries_.size(); ++i) {
        const auto &e = entries_[i];
        if (e.version == version && !bad_[i] && e.rank < static_cast<std::uint32_t>(world())) have[e.rank] = 1;
    }
    std::string list;
    for (int r = 0; r < world(); ++r) {
        if (!have[static_cast<std::size_t>(r)]) list += (list.empty() ? "" : ",") + std::to_string(r);
    }
    return list;
}

Status verdict_nothing_complete(const Planner &planner, const RestoreFacts &f) {
    const std::string no_persist_hint =
        f.persist_dir.empty()
            ? std::string("restore from the persistent tier (--ckpt-persist), or start from scratch in a new job")
            : fmt::format("the persistent tier {} holds no complete copy either: start from scratch in a new job",
                          f.persist_dir);
    // Checked first: an elastic restore tried that version, newer than any
    // committed of this world size, and could not complete it (starting
    // over would throw the run's progress away).
    if (f.other_committed > planner.newest_committed().value_or(0)) {
        return error(TIERCKPT_ERR_NOT_FOUND,
                     "no complete checkpoint: version {} (saved by {} ranks) was committed, but no surviving node "
                     "store holds a good copy of every saved shard of it (their nodes and every node with a copy are "
                     "gone); {}",
                     f.other_committed, f.other_committed_world, no_persist_hint);
    }
    if (f.persist_other_world && planner.persistent_empty()) {
        return error(TIERCKPT_ERR_INVALID,
                     "the persistent directory {} holds checkpoints of a job of {} ranks (newest: version {}); this "
                     "job has {} ranks: restart it with {} ranks, or give --ckpt-persist a directory of its own",
                     f.persist_dir, f.persist_other_world, f.persist_other_version, f.world, f.persist_other_world);
    }
    if (planner.entries().empty() && f.store_other_world) {
        return error(TIERCKPT_ERR_INVALID,
                     "the node stores hold checkpoints of a job of {} ranks; this job has {} ranks: restart it with "
                     "{} ranks",
                     f.store_other_world, f.world, f.store_other_world);
    }
    if (auto committed = planner.newest_committed()) {
        // Starting over here would silently throw the run's progress away.
        return error(TIERCKPT_ERR_NOT_FOUND,
                     "no complete checkpoint: version {} was committed, but no surviving node store holds a good copy "
                     "of the shard of rank(s) {} (their node and every node with a copy are gone); {}",
                     *committed, planner.lost_ranks(*committed), no_persist_hint);
    }
    if (f.expect_version > 0) {
        return error(TIERCKPT_ERR_NOT_FOUND,
                     "no complete checkpoint: before this relaunch the job committed version {} ({}), but the node "
                     "stores of this step hold no complete version (the nodes with its shards and their copies are "
                     "gone); {}",
                     f.expect_version, env::kExpectVersion, no_persist_hint);
    }
    return Status::ok();
}

}  // namespace tck
