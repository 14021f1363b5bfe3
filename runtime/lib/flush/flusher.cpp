#include "flusher.hpp"

#include <vector>

#include "common/log.hpp"
#include "lib/collectives.hpp"
#include "store/persist.hpp"

namespace tck {

Flusher::Flusher(const JobLayout &job, store::StoreFile &store, std::string dir, std::uint64_t every,
                 std::uint32_t keep, std::uint64_t job_id)
    : job_(job), store_(store), dir_(std::move(dir)), every_(every ? every : 1),
      keep_(keep ? keep : persist::kDefaultKeep), job_id_(job_id) {}

void Flusher::start() {
    if (enabled() && !thread_.joinable()) thread_ = std::thread([this] { loop(); });
}

void Flusher::stop() {
    {
        std::lock_guard<std::mutex> lk(fmu_);
        stop_ = true;
    }
    fcv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void Flusher::on_commit(std::uint64_t version, std::uint32_t slot) {
    if (!enabled() || ++commits_ < every_) return;
    commits_ = 0;
    if (outstanding_) {
        ++stats_.skipped;
        if (job_.rank == 0) {
            log::info("version {} is not flushed: the flush of version {} is still running", version,
                      current_.version);
        }
        return;
    }
    store::SlotRecord rec = store_.read_record(slot);
    protect_.store(version);
    outstanding_ = true;
    // Bytes and CRC of this rank's shard, as the manifest lists them
    // (recorded now: the slot may be reused before the flush settles).
    current_ = Job{version, slot, rec.payload_bytes, rec.payload_crc};
    {
        std::lock_guard<std::mutex> lk(fmu_);
        queued_ = current_;
        done_ = false;
        status_ = Status::ok();
    }
    fcv_.notify_all();
}

// The flusher thread: writes this rank's shard of a committed version from
// the node store to the persistent directory. No MPI; the manifest is
// written by rank 0 in a later collective call (settle).
void Flusher::loop() {
    for (;;) {
        Job job;
        {
            std::unique_lock<std::mutex> lk(fmu_);
            fcv_.wait(lk, [&] { return stop_ || queued_.has_value(); });
            if (!queued_) return;
            job = *queued_;
            queued_.reset();
        }
        // Between writes (and before the first) the flush yields to a save
        // copying into the store: the copy is what training waits for.
        auto hold = [this] {
            if (!staging_.load(std::memory_order_acquire)) return;
            std::unique_lock<std::mutex> lk(fmu_);
            fcv_.wait(lk, [&] { return !staging_.load() || stop_; });
        };
        hold();
        Status st;
        persist::WriteStats ws;
        auto dir = persist::Dir::open(dir_, true);
        if (!dir) {
            st = dir.status();
        } else {
            store::SlotRecord rec = store_.read_record(job.slot);
            persist::ShardMeta meta;
            meta.rank = static_cast<std::uint32_t>(job_.rank);
            meta.world = static_cast<std::uint32_t>(job_.world);
            meta.version = job.version;
            meta.bytes = job.bytes;
            meta.crc = job.crc;
            meta.job_id = job_id_;
            if (!store::StoreFile::record_valid(rec) || rec.version != job.version || rec.payload_crc != job.crc) {
                st = error(TIERCKPT_ERR_INTERNAL, "the slot of version {} changed before its flush", job.version);
            } else {
                // The slot is protected (protect_) until this returns.
                st = dir->write_shard(meta, store_.base() + rec.offset, rec.capacity, false, &ws, hold);
            }
        }
        protect_.store(~0ull);
        if (!st) {
            log::warn("rank {}: flush of version {} to {} failed: {}", job_.rank, job.version, dir_, st.message());
        } else {
            log::debug("rank {}: flushed version {} ({} bytes, {:.1f} ms{})", job_.rank, job.version, job.bytes, ws.ms,
                       ws.direct ? ", O_DIRECT" : "");
        }
        {
            std::lock_guard<std::mutex> lk(fmu_);
            status_ = st;
            ms_ = ws.ms;
            done_ = true;
        }
        fcv_.notify_all();
    }
}

void Flusher::set_staging(bool on) {
    if (!enabled()) return;
    if (on) {
        staging_.store(true, std::memory_order_release);
        return;
    }
    if (!staging_.load(std::memory_order_acquire)) return;
    {
        std::lock_guard<std::mutex> lk(fmu_);  // no lost wake-up against hold()
        staging_.store(false, std::memory_order_release);
    }
    fcv_.notify_all();
}

bool Flusher::wait_for_slot() {
    if (!enabled() || protect_.load() == ~0ull) return false;
    std::unique_lock<std::mutex> lk(fmu_);
    fcv_.wait(lk, [&] { return done_ || stop_; });
    return true;
}

Status Flusher::settle(bool block) {
    if (!outstanding_) return Status::ok();
    struct Report {
        std::uint32_t done;
        std::uint32_t code;
        std::uint64_t bytes;
        std::uint32_t crc;
        std::uint32_t pad;
    } mine{};
    double ms = 0;
    {
        std::unique_lock<std::mutex> lk(fmu_);
        if (block) fcv_.wait(lk, [&] { return done_; });
        mine.done = done_ ? 1 : 0;
        mine.code = static_cast<std::uint32_t>(status_.code());
        ms = ms_;
    }
    mine.bytes = current_.bytes;
    mine.crc = current_.crc;
    std::vector<Report> all(static_cast<std::size_t>(job_.world));
    int rc = MPI_Allgather(&mine, sizeof mine, MPI_BYTE, all.data(), sizeof mine, MPI_BYTE, job_.comm);
    if (rc != MPI_SUCCESS) return mpi_error("the flush report (MPI_Allgather)", rc);
    for (const auto &r : all) {
        if (!r.done) return Status::ok();  // not yet everywhere: ask again in the next collective call
    }
    const std::uint64_t version = current_.version;
    outstanding_ = false;
    int failed_rank = -1;
    tierckpt_status_t failed_code = TIERCKPT_OK;
    for (int r = 0; r < job_.world; ++r) {
        if (all[static_cast<std::size_t>(r)].code != TIERCKPT_OK && failed_rank < 0) {
            failed_rank = r;
            failed_code = static_cast<tierckpt_status_t>(all[static_cast<std::size_t>(r)].code);
        }
    }
    // Rank 0 makes the version visible (or clears what a failed flush left).
    int outcome = TIERCKPT_OK;
    std::string why;
    if (job_.rank == 0) {
        auto dir = persist::Dir::open(dir_, false);
        Status st = dir ? Status::ok() : dir.status();
        if (st && failed_rank < 0) {
            persist::Manifest m;
            m.version = version;
            m.world = static_cast<std::uint32_t>(job_.world);
            m.job_id = job_id_;
            m.shards.resize(all.size());
            for (std::size_t r = 0; r < all.size(); ++r) m.shards[r] = {all[r].bytes, all[r].crc, true};
            st = dir->write_manifest(m);
            if (st) {
                Status kept = dir->retain(keep_);
                if (!kept) log::warn("persistent tier {}: retention: {}", dir_, kept.message());
            }
        }
        if (failed_rank >= 0 || !st) {
            if (dir) {
                Status rm = dir->remove_version(version);  // incomplete: nothing of value
                if (!rm) log::warn("{}", rm.message());
            }
            outcome = failed_rank >= 0 ? failed_code : st.code();
            why = failed_rank >= 0 ? fmt::format("rank {} could not write its shard ({}; see its log)", failed_rank,
                                                 tierckpt_status_string(failed_code))
                                   : st.message();
            log::error("flush of version {} to {} failed: {}; version {} stays the newest there", version, dir_, why,
                       stats_.version ? std::to_string(stats_.version) : std::string("(none of this job)"));
        }
    }
    rc = MPI_Bcast(&outcome, 1, MPI_INT, 0, job_.comm);
    if (rc != MPI_SUCCESS) return mpi_error("the flush outcome (MPI_Bcast)", rc);
    stats_.ms = ms;
    stats_.bytes = mine.bytes;
    stats_.status = static_cast<tierckpt_status_t>(outcome);
    if (outcome == TIERCKPT_OK) {
        stats_.version = version;
        return Status::ok();
    }
    ++stats_.failures;
    return error(static_cast<tierckpt_status_t>(outcome), "flush of version {} to {} failed{}", version, dir_,
                 why.empty() ? "" : ": " + why);
}

}  // namespace tck
