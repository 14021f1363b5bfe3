#include "msg_check.hpp"

#include <algorithm>
#include <utility>

#include "common/log.hpp"
#include "store/store_format.hpp"

namespace tck::msgcheck {

const char *type_name(std::uint32_t type) {
    switch (type) {
    case TransportMsg::ready: return "ready";
    case TransportMsg::done: return "done";
    case TransportMsg::heartbeat: return "heartbeat";
    case TransportMsg::bye: return "bye";
    default: return "unknown";
    }
}

Reject check_header(const TransportMsg &m, std::uint32_t world, std::uint32_t self) {
    switch (m.type) {
    case TransportMsg::ready:
    case TransportMsg::done:
    case TransportMsg::heartbeat:
    case TransportMsg::bye:
        break;
    default:
        return "unknown message type";
    }
    if (m.from >= world) return "sender is not a rank of the job";
    if (m.from == self) return "sender claims to be this rank";
    return nullptr;
}

Reject check_ready(const TransportMsg &m, const std::vector<int> &sources, std::uint64_t sender_store_bytes,
                   std::uint64_t own_store_bytes) {
    if (std::find(sources.begin(), sources.end(), static_cast<int>(m.from)) == sources.end()) {
        return "ready from a rank this rank keeps no copies for";
    }
    // Partners copy the sender's own shard only; owner picks the replica
    // slot's rank, so another value would file the copy under a wrong rank.
    if (m.owner != m.from) return "ready for another rank's shard";
    // A shard is its manifest (nregions entries, at least one region: save
    // refuses none) and the regions' bytes; nregions is kept in the slot
    // record and read back at restore.
    if (m.nregions == 0) return "ready for a shard without regions";
    // (The manifest's first form, the smaller: a lower bound for both.)
    if (m.bytes < store::manifest_bytes(m.nregions)) return "ready for a shard shorter than its manifest";
    if (!range_in(m.offset, m.bytes, sender_store_bytes)) return "ready for bytes outside the sender's store";
    if (m.bytes > own_store_bytes) return "ready for a shard larger than this rank's store";
    return nullptr;
}

Reject check_done(const TransportMsg &m, std::uint32_t self) {
    if (m.owner != self) return "done for another rank's shard";
    if (m.ok > 1) return "done with an ok that is neither 0 nor 1";
    return nullptr;
}

AckTally::AckTally(std::uint64_t version, std::vector<int> partners)
    : version_(version), active_(true), partners_(std::move(partners)), answered_(partners_.size(), 0) {}

AckTally::Outcome AckTally::add(std::uint32_t from, std::uint64_t version) {
    if (!active_ || version != version_) return Outcome::other_version;
    for (std::size_t i = 0; i < partners_.size(); ++i) {
        if (partners_[i] < 0 || static_cast<std::uint32_t>(partners_[i]) != from) continue;
        if (answered_[i]) return Outcome::duplicate;
        answered_[i] = 1;
        ++count_;
        return Outcome::counted;
    }
    return Outcome::not_owed;
}

Reject check_pull_request(std::uint32_t from, std::uint64_t offset, std::uint64_t len, std::uint32_t world,
                          std::uint32_t self, std::uint64_t store_bytes, std::uint64_t max_len) {
    if (from >= world) return "pull request from a rank outside the job";
    if (from == self) return "pull request claiming to come from this rank";
    if (len == 0) return "empty pull request";
    if (len > max_len) return "pull request larger than a reader asks at once";
    if (!range_in(offset, len, store_bytes)) return "pull request for bytes outside this store";
    return nullptr;
}

Reject check_piece(std::uint64_t pull_dst, std::uint64_t pull_len, std::uint64_t piece_bytes, std::uint64_t dst_offset,
                   std::uint64_t len, std::uint64_t data_len, std::size_t *index) {
    if (piece_bytes == 0) return "no piece size";
    if (dst_offset < pull_dst || dst_offset - pull_dst >= pull_len) return "piece outside the pull's range";
    const std::uint64_t rel = dst_offset - pull_dst;
    if (rel % piece_bytes != 0) return "piece not at a piece boundary";
    if (len != std::min(piece_bytes, pull_len - rel)) return "piece of the wrong length";
    if (data_len != len) return "piece carries another length than it says";
    *index = static_cast<std::size_t>(rel / piece_bytes);
    return nullptr;
}

bool DropLog::note(double now) {
    if (any_ && now - last_ < interval_ms_) {
        ++untold_;
        return false;
    }
    any_ = true;
    last_ = now;
    told_untold_ = untold_;
    untold_ = 0;
    return true;
}

void DropLog::report(double now, const std::string &line) {
    if (!note(now)) {
        log::debug("{}", line);
    } else if (told_untold_ > 0) {
        log::warn("{} ({} more dropped since the last such line)", line, told_untold_);
    } else {
        log::warn("{}", line);
    }
}

}  // namespace tck::msgcheck
