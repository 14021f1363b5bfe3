// What a peer's message must satisfy before anything acts on it. Anything
// that reaches this rank's UCX worker or libfabric endpoint can send to it,
// so every field a peer sends is checked against what this rank knows from
// the job itself (exchanged over MPI at open): the number of ranks, each
// node store's size, who keeps copies for whom. A message that fails is
// dropped (and counted for a rate-limited log line), never half-used.
//
// Pure functions of plain data, so the decisions are unit-tested
// (tests/unit/test_msg_check.cpp); the backends and the checkpointer call
// them and stay thin. Only DropLog::report writes (the log line).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "transport.hpp"

namespace tck::msgcheck {

// nullptr: accepted; otherwise why not (a fixed string for a log line).
using Reject = const char *;

// "ready", "done", "heartbeat", "bye" or "unknown", for log lines.
const char *type_name(std::uint32_t type);

// [offset, offset + bytes) lies inside [0, size). Written so that no sum
// can wrap: offset + bytes > size would accept offset = 2^64 - 1.
constexpr bool range_in(std::uint64_t offset, std::uint64_t bytes, std::uint64_t size) {
    return offset <= size && bytes <= size - offset;
}

// Every control message: a known type, from a rank of the job other than
// this one (self < world).
Reject check_header(const TransportMsg &m, std::uint32_t world, std::uint32_t self);

// ready (header checked): from a rank whose shards this rank keeps copies
// of (`sources`: the ranks that have this rank among their partners), about
// the sender's own shard, with a manifest's worth of bytes at least, lying
// inside the sender's store and small enough for this rank's store.
Reject check_ready(const TransportMsg &m, const std::vector<int> &sources, std::uint64_t sender_store_bytes,
                   std::uint64_t own_store_bytes);

// done (header checked): about this rank's shard, ok 0 or 1. Whether it
// counts is AckTally's decision.
Reject check_done(const TransportMsg &m, std::uint32_t self);

// The acknowledgements a version in flight is owed: one from each partner
// (the ranks this rank told `ready`), each counted once.
class AckTally {
public:
    enum class Outcome {
        counted,        // the first from a partner that owes it
        duplicate,      // that partner has answered already
        not_owed,       // the sender is not a partner
        other_version,  // not the version in flight (a late answer, or none in flight)
    };
    AckTally() = default;
    AckTally(std::uint64_t version, std::vector<int> partners);
    Outcome add(std::uint32_t from, std::uint64_t version);
    std::size_t count() const { return count_; }
    std::size_t owed() const { return partners_.size(); }
    bool complete() const { return count_ == partners_.size(); }

private:
    std::uint64_t version_ = 0;
    bool active_ = false;
    std::vector<int> partners_;
    std::vector<char> answered_;
    std::size_t count_ = 0;
};

// UCX pull request (the reader asks the holder for bytes of its store,
// which the holder sends to the reader's own endpoint): a rank of the job
// other than this one, a non-empty range of at most max_len bytes inside
// this store.
Reject check_pull_request(std::uint32_t from, std::uint64_t offset, std::uint64_t len, std::uint32_t world,
                          std::uint32_t self, std::uint64_t store_bytes, std::uint64_t max_len);

// UCX data piece of a pull this rank asked for: the pull lands at
// [pull_dst, pull_dst + pull_len) of our store in pieces of piece_bytes.
// A piece must start at a piece boundary of that range and have exactly
// the piece's length (the last one shorter); data_len: the bytes the
// message really carries. On acceptance *index is the piece's number.
Reject check_piece(std::uint64_t pull_dst, std::uint64_t pull_len, std::uint64_t piece_bytes, std::uint64_t dst_offset,
                   std::uint64_t len, std::uint64_t data_len, std::size_t *index);

// Rate limit for the log lines about dropped messages, so a peer sending
// nonsense cannot flood the log: the first drop is told at once, later
// ones at most once an interval, with how many went untold meanwhile.
// Times passed in (ms).
class DropLog {
public:
    explicit DropLog(double interval_ms = 10000) : interval_ms_(interval_ms) {}
    // A message dropped at `now`: true when a line should be written now;
    // then untold() is how many drops before this one were not told.
    bool note(double now);
    std::uint64_t untold() const { return told_untold_; }
    // note(now), then `line` as a warning when it says so (with the count
    // of untold drops), otherwise at debug level.
    void report(double now, const std::string &line);

private:
    double interval_ms_;
    double last_ = 0;
    bool any_ = false;
    std::uint64_t untold_ = 0, told_untold_ = 0;
};

}  // namespace tck::msgcheck
