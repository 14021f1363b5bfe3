#include "inflight.hpp"

#include "common/log.hpp"

#include <algorithm>
#include <chrono>

namespace tck {

void InFlightSave::begin_unstaged(std::uint64_t version, double t_start) {
    std::lock_guard<std::mutex> lk(mu_);
    active_ = true;
    version_ = version;
    slot_.reset();
    t_start_ = t_start;
    staging_ = false;
    staging_failed_ = false;
    staged_upto_ = 0;
    checksummed_ = true;
    worker_ok_ = false;
    replicated_ = true;
    replica_failed_ = false;
    acks_ = msgcheck::AckTally();
    stats_ = SaveStats{};
    stats_.version = version;
}

void InFlightSave::begin(std::uint64_t version, std::uint32_t slot, double t_start, std::uint64_t manifest_bytes,
                         const SaveStats &stats) {
    std::lock_guard<std::mutex> lk(mu_);
    active_ = true;
    version_ = version;
    slot_ = slot;
    t_start_ = t_start;
    staging_ = true;
    staging_failed_ = false;
    staged_upto_ = manifest_bytes;
    checksummed_ = false;
    worker_ok_ = true;
    replicated_ = false;
    replica_failed_ = false;
    acks_ = msgcheck::AckTally();
    deadline_ms_ = 0;
    t_checksummed_ = 0;
    stats_ = stats;
}

void InFlightSave::staged(std::uint64_t upto) {
    {
        std::lock_guard<std::mutex> lk(mu_);
        staged_upto_ = std::max(staged_upto_, upto);
    }
    cv_.notify_all();
}

void InFlightSave::end_staging(bool ok, std::uint64_t payload_bytes, double stall_ms) {
    {
        std::lock_guard<std::mutex> lk(mu_);
        stats_.stall_ms = stall_ms;
        staging_ = false;
        if (ok) staged_upto_ = payload_bytes;
        else staging_failed_ = true;
    }
    cv_.notify_all();
}

std::optional<bool> InFlightSave::vote_locked() const {
    if (!(checksummed_ && replicated_)) return std::nullopt;
    return worker_ok_ && !replica_failed_;
}

bool InFlightSave::wait_votable() {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return vote_locked().has_value(); });
    return *vote_locked();
}

std::optional<bool> InFlightSave::votable() const {
    std::lock_guard<std::mutex> lk(mu_);
    return vote_locked();
}

void InFlightSave::committed(double commit_ms) {
    std::lock_guard<std::mutex> lk(mu_);
    stats_.committed = true;
    stats_.commit_ms = commit_ms;
}

void InFlightSave::clear() {
    std::lock_guard<std::mutex> lk(mu_);
    active_ = false;
}

bool InFlightSave::active() const {
    std::lock_guard<std::mutex> lk(mu_);
    return active_;
}

std::uint64_t InFlightSave::version() const {
    std::lock_guard<std::mutex> lk(mu_);
    return version_;
}

std::optional<std::uint32_t> InFlightSave::slot() const {
    std::lock_guard<std::mutex> lk(mu_);
    return slot_;
}

double InFlightSave::t_start() const {
    std::lock_guard<std::mutex> lk(mu_);
    return t_start_;
}

InFlightSave::Staged InFlightSave::wait_staged(std::uint64_t done) {
    std::unique_lock<std::mutex> lk(mu_);
    if (active_ && staging_ && staged_upto_ <= done) cv_.wait_for(lk, std::chrono::milliseconds(100));
    return {active_, staging_, staging_failed_, staged_upto_};
}

void InFlightSave::staging_failed() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        checksummed_ = true;
        worker_ok_ = false;
        replicated_ = true;
    }
    cv_.notify_all();
}

void InFlightSave::checksummed(msgcheck::AckTally acks, double t, double deadline, bool announced, bool no_partners,
                               double checksum_ms) {
    {
        std::lock_guard<std::mutex> lk(mu_);
        stats_.checksum_ms = checksum_ms;
        acks_ = std::move(acks);
        checksummed_ = true;
        worker_ok_ = true;
        t_checksummed_ = t;
        deadline_ms_ = deadline;
        if (!announced) replica_failed_ = true;
        if (no_partners || !announced) {
            replicated_ = true;
            stats_.ready_ms = t - t_start_;
        }
    }
    cv_.notify_all();
}

std::optional<msgcheck::AckTally::Outcome> InFlightSave::ack(std::uint32_t from, std::uint64_t version, bool ok,
                                                             double now) {
    std::lock_guard<std::mutex> lk(mu_);
    if (!active_) return std::nullopt;  // late: nothing waits for it
    auto outcome = acks_.add(from, version);
    if (outcome == msgcheck::AckTally::Outcome::counted && !replicated_) {
        if (!ok) replica_failed_ = true;
        if (acks_.complete() || !ok) {
            replicated_ = true;
            stats_.replicate_ms = now - t_checksummed_;
            stats_.replicas = static_cast<unsigned>(acks_.count());
            stats_.ready_ms = now - t_start_;
            log::debug("version {}: checksummed in {:.1f} ms, copies acknowledged {:.1f} ms later ({:.1f} ms from "
                       "the save's start)", version, stats_.checksum_ms, stats_.replicate_ms, stats_.ready_ms);
            cv_.notify_all();
        }
    }
    return outcome;
}

std::optional<InFlightSave::Expired> InFlightSave::expire(double now) {
    std::lock_guard<std::mutex> lk(mu_);
    if (!active_ || !checksummed_ || replicated_ || now <= deadline_ms_) return std::nullopt;
    replica_failed_ = true;
    replicated_ = true;
    stats_.ready_ms = now - t_start_;
    cv_.notify_all();
    return Expired{version_, acks_.count()};
}

SaveStats InFlightSave::stats() const {
    std::lock_guard<std::mutex> lk(mu_);
    return stats_;
}

}  // namespace tck
