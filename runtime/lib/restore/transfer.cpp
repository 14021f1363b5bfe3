#include "transfer.hpp"

#include <algorithm>
#include <new>
#include <atomic>

#include "common/clock.hpp"
#include "common/log.hpp"
#include "lib/collectives.hpp"
#include "store/crc32c.hpp"

namespace tck {

const char *source_name(Source s) {
    switch (s) {
    case Source::none: return "none";
    case Source::local: return "local";
    case Source::peer: return "peer";
    case Source::persistent: return "persistent";
    }
    return "?";
}

void count_bytes(report::RestoreBreakdown &parts, Source source, std::uint64_t bytes) {
    switch (source) {
    case Source::none: break;
    case Source::local: parts.local_bytes += bytes; break;
    case Source::peer: parts.peer_bytes += bytes; break;
    case Source::persistent: parts.persistent_bytes += bytes; break;
    }
}

namespace {

constexpr int kTagHeader = 7101;
constexpr int kTagData = 7102;
constexpr std::uint64_t kChunk = 1ull << 30;  // MPI counts are int

// Makes shard the verified shard of payload: its checksum (unless the
// caller checked it) and its manifest. Adds the checksum's time to ms.
Status verify(Shard &shard, const std::uint8_t *payload, std::uint64_t bytes, std::uint32_t crc, bool crc_checked,
              unsigned threads, double &ms, std::vector<std::uint8_t> *owner = nullptr) {
    if (!crc_checked) {
        const double t0 = now_ms();
        const bool good = crc32c_parallel(payload, bytes, threads) == crc;
        ms += now_ms() - t0;
        if (!good) return error(TIERCKPT_ERR_CORRUPT, "checksum mismatch");
    }
    auto entries = store::parse_shard_manifest(payload, bytes);
    if (!entries) return entries.status();
    if (owner) {
        shard.owned = std::move(*owner);
        payload = shard.owned.data();  // a moved vector keeps its buffer
    }
    shard.payload = payload;
    shard.bytes = bytes;
    shard.crc = crc;
    shard.regions = std::move(*entries);
    return Status::ok();
}

}  // namespace

TransferOutcome transfer_shard(TransferContext &ctx, const std::vector<InventoryEntry> &inv, const Plan &plan,
                               const persist::ShardEntry &pentry, std::optional<std::uint64_t> expect_bytes,
                               std::optional<std::uint32_t> saved_rank,
                               const std::vector<std::pair<std::uint64_t, std::uint64_t>> *needs) {
    const JobLayout &job = ctx.job;
    store::StoreFile &store = ctx.store;
    TransferOutcome out;
    const double t_begin = now_ms();
    const std::uint64_t version = plan.version;
    const int my_plan = plan.entry[static_cast<std::size_t>(job.rank)];
    const bool from_disk = my_plan == Plan::kFromPersistent;
    const bool nothing = my_plan == Plan::kNothing;  // a round of an elastic restore with nothing for this rank
    static const InventoryEntry kNone{};
    const InventoryEntry &mine = my_plan < 0 ? kNone : inv[static_cast<std::size_t>(my_plan)];
    out.bytes = from_disk ? pentry.bytes : mine.payload_bytes;
    const bool local = nothing || (!from_disk && static_cast<int>(mine.holder) == job.leader());
    out.source = from_disk ? Source::persistent : local ? Source::local : Source::peer;
    out.via = from_disk ? "file" : local ? "store" : "mpi";
    out.shard.version = version;
    out.shard.source = out.source;

    // A shard on another node comes over the transport when the job has
    // one: the worker reads it from the holder's registered store straight
    // into a slot of this node's store (registered too), which keeps it as a
    // copy afterwards. Only free room is taken, never an older version's
    // slot: if this version fails, an older one may need it. Without a
    // transport (no replicas) or room, the holder sends the shard over MPI.
    std::optional<std::uint32_t> pull_slot;
    if (ctx.repl.has_transport() && !local && !from_disk) {
        // Recorded as a copy of the saved rank's shard (in an elastic
        // restore, another rank's of another world size than this job's).
        auto guard = store.lock();
        auto s = store.allocate(mine.rank, mine.world, mine.version, mine.payload_bytes, 0, mine.nregions,
                                store::kReplica, job.rank);
        if (s) {
            pull_slot = *s;
        } else {
            log::info("restore: rank {}: {}; fetching the shard over MPI instead of {}", job.rank,
                      s.status().message(), ctx.repl.transport_name());
        }
    }
    std::vector<int> pulls(static_cast<std::size_t>(job.world), 0);
    if (ctx.repl.has_transport()) {
        int me = pull_slot ? 1 : 0;
        int rc = MPI_Allgather(&me, 1, MPI_INT, pulls.data(), 1, MPI_INT, job.comm);
        if (rc != MPI_SUCCESS) {
            out.status = mpi_error("restore (who reads over the transport)", rc);
            return out;
        }
    }
    std::uint8_t *pull_dst = nullptr;
    std::atomic<std::uint64_t> pulled_bytes{0};  // landed so far (the worker's)
    if (pull_slot) {
        pull_dst = store.base() + store.read_record(*pull_slot).offset;
        // Every rank on the holder's node registered the same store: the
        // readers are spread over their workers, which serve in parallel.
        std::vector<int> servers = job.ranks_on(static_cast<int>(mine.holder));
        int server = servers[static_cast<std::size_t>(job.rank) % servers.size()];
        Worker &worker = ctx.worker;
        ctx.worker.post_task([&ctx, &pulled_bytes, &worker, server, off = mine.offset, dst = pull_dst,
                              n = mine.payload_bytes] {
            return ctx.repl.pull(server, off, dst, n, [&](std::uint64_t k) {
                pulled_bytes.store(k);
                worker.notify();
            });
        });
        out.via = ctx.repl.transport_name();
        out.pulled = true;
    }
    const bool by_mpi = !local && !from_disk && !pull_slot;

    // Over MPI, holders verify what they send; the header says whether it
    // is good.
    struct Header {
        std::uint64_t ok;
        std::uint64_t bytes;
    };
    std::vector<MPI_Request> reqs;
    std::vector<Header> send_heads;
    std::vector<int> send_to;
    for (int r = 0; r < job.world; ++r) {
        const int e_index = plan.entry[static_cast<std::size_t>(r)];
        if (e_index < 0) continue;                         // reads the persistent tier, or nothing
        if (pulls[static_cast<std::size_t>(r)]) continue;  // reads over the transport
        const InventoryEntry &e = inv[static_cast<std::size_t>(e_index)];
        if (static_cast<int>(e.holder) != job.rank || job.leader_of[static_cast<std::size_t>(r)] == job.rank) continue;
        send_to.push_back(r);
    }
    send_heads.resize(send_to.size());
    for (std::size_t i = 0; i < send_to.size(); ++i) {
        const InventoryEntry &e = inv[static_cast<std::size_t>(plan.entry[static_cast<std::size_t>(send_to[i])])];
        store::SlotRecord rec = store.read_record(e.slot);
        const double t0 = now_ms();
        bool good = store::StoreFile::record_valid(rec) && rec.version == e.version && rec.rank == e.rank &&
                    crc32c(store.base() + rec.offset, e.payload_bytes) == e.crc;
        out.verify_ms += now_ms() - t0;
        send_heads[i] = {good ? 1u : 0u, e.payload_bytes};
        reqs.emplace_back();
        MPI_Isend(&send_heads[i], sizeof(Header), MPI_BYTE, send_to[i], kTagHeader, job.comm, &reqs.back());
    }
    Header my_head{0, 0};
    if (by_mpi) {
        reqs.emplace_back();
        MPI_Irecv(&my_head, sizeof my_head, MPI_BYTE, static_cast<int>(mine.holder), kTagHeader, job.comm,
                  &reqs.back());
    }
    int rc = MPI_Waitall(static_cast<int>(reqs.size()), reqs.data(), MPI_STATUSES_IGNORE);
    reqs.clear();

    // The payloads, in chunks, straight from the holder's store mapping.
    std::vector<std::uint8_t> buffer;
    if (rc == MPI_SUCCESS) {
        for (std::size_t i = 0; i < send_to.size(); ++i) {
            if (!send_heads[i].ok) continue;
            const InventoryEntry &e = inv[static_cast<std::size_t>(plan.entry[static_cast<std::size_t>(send_to[i])])];
            const std::uint8_t *src = store.base() + store.read_record(e.slot).offset;
            for (std::uint64_t off = 0; off < e.payload_bytes; off += kChunk) {
                reqs.emplace_back();
                MPI_Isend(src + off, static_cast<int>(std::min(kChunk, e.payload_bytes - off)), MPI_BYTE, send_to[i],
                          kTagData, job.comm, &reqs.back());
            }
        }
        if (by_mpi && my_head.ok) {
            buffer.resize(my_head.bytes);
            for (std::uint64_t off = 0; off < my_head.bytes; off += kChunk) {
                reqs.emplace_back();
                MPI_Irecv(buffer.data() + off, static_cast<int>(std::min(kChunk, my_head.bytes - off)), MPI_BYTE,
                          static_cast<int>(mine.holder), kTagData, job.comm, &reqs.back());
            }
        }
    }
    int rc_data = rc == MPI_SUCCESS ? MPI_Waitall(static_cast<int>(reqs.size()), reqs.data(), MPI_STATUSES_IGNORE)
                                    : MPI_SUCCESS;
    // The worker's read ends (or times out) before anything returns: it
    // writes into the store. The checksum runs behind the transfer, on the
    // bytes landed so far, with the threads of the checksums the
    // application waits for.
    PieceCrc pulled_crc(std::uint64_t{1} << store::kPieceShift);  // and the copy's piece table
    std::uint64_t checked = 0;
    auto check_upto = [&](std::uint64_t upto) {
        if (upto <= checked) return;
        const double t0 = now_ms();
        pulled_crc.add(pull_dst + checked, upto - checked, job.crc_threads);
        out.verify_ms += now_ms() - t0;
        checked = upto;
    };
    Status pulled;
    if (pull_slot) {
        for (bool done = false; !done;) {
            done = ctx.worker.wait_task_or([&] { return pulled_bytes.load() > checked; });
            check_upto(std::min<std::uint64_t>(pulled_bytes.load(), mine.payload_bytes));
        }
        pulled = ctx.worker.wait_task();
        if (pulled) check_upto(mine.payload_bytes);
        if (pulled && pulled_crc.whole() != mine.crc) pulled = error(TIERCKPT_ERR_CORRUPT, "checksum mismatch");
    }
    const double t_moved = now_ms();
    if (rc != MPI_SUCCESS) {
        out.status = mpi_error("restore (headers)", rc);
        return out;
    }
    if (rc_data != MPI_SUCCESS) {
        out.status = mpi_error("restore (data)", rc_data);
        return out;
    }

    Status st;
    if (nothing) {
        out.source = Source::none;
        out.via = "none";
        out.bytes = 0;
        return out;
    }
    if (from_disk) {
        out.where = "the persistent tier";
        auto dir = persist::Dir::open(ctx.persist_dir, false);
        if (!dir) {
            st = dir.status();
        } else if (expect_bytes && pentry.bytes != *expect_bytes) {
            // Checked before reading: the manifest's size is what would be
            // allocated, and a shard of another size cannot fit the regions.
            st = error(TIERCKPT_ERR_INVALID, "its manifest says {} bytes, the registered regions make {}",
                       pentry.bytes, *expect_bytes);
        } else {
            // The MANIFEST's size may be anything its user wrote (a sparse
            // file as large): no allocation may escape as an exception
            // (this rank would leave the collective the others wait in).
            try {
                auto bytes =
                    dir->read_shard(version, saved_rank.value_or(static_cast<std::uint32_t>(job.rank)), pentry);
                st = bytes ? verify(out.shard, bytes->data(), bytes->size(), pentry.crc, false, job.crc_threads,
                                    out.verify_ms, &*bytes)
                           : bytes.status();
            } catch (const std::bad_alloc &) {
                st = error(TIERCKPT_ERR_NO_MEMORY, "its {} bytes do not fit in this process's memory", pentry.bytes);
            }
        }
        if (!st && st.code() != TIERCKPT_ERR_INVALID) out.persist_bad = true;
        out.status = st;
        return out;
    }
    out.where = local ? std::string("this node's store") : fmt::format("rank {}'s node over {}", mine.holder, out.via);
    if (local) {
        store::SlotRecord rec = store.read_record(mine.slot);
        if (!store::StoreFile::record_valid(rec) || rec.version != mine.version || rec.rank != mine.rank) {
            st = error(TIERCKPT_ERR_CORRUPT, "the slot changed under restore");
        } else {
            // Part of the shard needed, and a believable piece table (its
            // pieces join into the checksum the inventory listed): only the
            // pieces that part touches are checked.
            std::optional<std::vector<std::uint32_t>> table;
            if (needs && rec.payload_crc == mine.crc) table = store.read_piece_table(rec);
            bool checked_here = false;
            if (table) {
                const double t0 = now_ms();
                st = store::check_pieces(store.base() + rec.offset, mine.payload_bytes, *table, rec.piece_shift,
                                         *needs, job.crc_threads);
                out.verify_ms += now_ms() - t0;
                checked_here = st.is_ok();
            }
            if (st) {
                st = verify(out.shard, store.base() + rec.offset, mine.payload_bytes, mine.crc, checked_here,
                            job.crc_threads, out.verify_ms);
            }
            if (st) out.shard.slot = HeldSlot{mine.slot, mine.version, mine.rank};
        }
    } else if (pull_slot) {
        st = pulled ? verify(out.shard, pull_dst, mine.payload_bytes, mine.crc, true, job.crc_threads, out.verify_ms)
                    : pulled;
        log::debug("restore: rank {}: {} bytes from rank {}'s node over {}: moved and verified in {:.1f} ms",
                   job.rank, mine.payload_bytes, mine.holder, out.via, t_moved - t_begin);
        if (st) {
            // Intact (the checksum matched): this node keeps the copy.
            out.shard.slot = HeldSlot{*pull_slot, mine.version, mine.rank};
            store::SlotRecord rec = store.read_record(*pull_slot);
            rec.payload_crc = mine.crc;
            rec.piece_shift = store.write_piece_table(rec, pulled_crc.pieces());
            rec.state = static_cast<std::uint32_t>(store::SlotState::complete);
            store.write_record(*pull_slot, rec);
        }
    } else if (!my_head.ok) {
        st = error(TIERCKPT_ERR_CORRUPT, "the holder found the copy corrupt");
    } else {
        st = verify(out.shard, buffer.data(), my_head.bytes, mine.crc, false, job.crc_threads, out.verify_ms,
                    &buffer);
    }
    // A copy that is damaged, or that the transport cannot reach, is left
    // out of the next plan.
    if (!st && (st.code() == TIERCKPT_ERR_CORRUPT || pull_slot)) out.bad_entry = my_plan;
    out.status = st;
    return out;
}

}  // namespace tck
