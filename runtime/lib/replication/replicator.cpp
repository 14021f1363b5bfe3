#include "replicator.hpp"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "common/clock.hpp"
#include "common/env_names.hpp"
#include "common/log.hpp"
#include "common/random.hpp"
#include "lib/collectives.hpp"
#include "lib/test_hooks.hpp"
#include "heartbeat.hpp"
#include "partners.hpp"
#include "store/crc32c.hpp"

namespace tck {

namespace {
// How long keep_copy waits for this rank to apply a verdict its partner
// has applied already (the two left the same vote): scheduling delay on a
// loaded node, normally well under a millisecond.
constexpr double kVerdictLagMs = 1000;
}  // namespace

Result<std::unique_ptr<Replicator>> Replicator::setup(const JobLayout &job, store::StoreFile &store,
                                                      const Options &opts, Hooks hooks) {
    std::unique_ptr<Replicator> self(new Replicator(job, store, std::move(hooks), opts.replica_timeout_ms));
    std::vector<int> nodes = job.node_leaders();
    unsigned r = std::min<unsigned>(opts.replicas, static_cast<unsigned>(nodes.size() - 1));
    if (opts.replicas > r && job.rank == 0) {
        log::warn("{} replicas asked, but the job spans {} node(s): keeping {}", opts.replicas, nodes.size(), r);
    }
    if (r == 0) return self;

    // Every rank must have a transport, or none replicates.
    Status st;
    auto t = make_transport(opts.transport);
    std::vector<std::uint8_t> blob;
    if (t) {
        auto b = (*t)->local_blob(store.base(), store.size());
        if (b) blob = std::move(*b);
        else st = b.status();
    } else {
        st = t.status();
    }
    if (!all_ranks(job.comm, st.is_ok())) {
        if (st) st = error(TIERCKPT_ERR_UNSUPPORTED, "another rank has no working transport");
        return error(st.code(), "--ckpt-replicas={} needs an RDMA transport ({}): {}", opts.replicas, opts.transport,
                     st.message());
    }
    auto blobs = allgather_bytes(job.comm, blob.data(), blob.size(), "exchanging transport addresses");
    if (!blobs) return blobs.status();
    // The job's token: only the ranks of this job hold it (transport.hpp).
    std::uint64_t drawn[2] = {1, 0};  // {rank 0 could draw it, the token}
    if (job.rank == 0) {
        auto token = random_u64();
        if (token) drawn[1] = *token;
        else st = token.status();
        drawn[0] = token.is_ok();
    }
    if (int rc = MPI_Bcast(drawn, 2, MPI_UINT64_T, 0, job.comm); rc != MPI_SUCCESS) {
        return mpi_error("handing out the job's token", rc);
    }
    if (!drawn[0]) return error(TIERCKPT_ERR_IO, "cannot draw the job's transport token: {}", st ? "on rank 0" : st.message());
    st = (*t)->set_peers(*blobs, job.rank, drawn[1]);
    if (!st) return st;
    self->transport_ = std::move(*t);

    // Every node's failure domain, as its leader sees it.
    auto domains = allgather_bytes(job.comm, opts.failure_domain.data(), opts.failure_domain.size(),
                                   "exchanging failure domains");
    if (!domains) return domains.status();
    std::vector<std::string> node_domains;
    for (int leader : nodes) {
        const auto &d = (*domains)[static_cast<std::size_t>(leader)];
        node_domains.emplace_back(d.begin(), d.end());
    }
    Partnership p = choose_partners(job.leader_of, node_domains, r, job.rank);
    self->partners_ = std::move(p.partners);
    self->sources_ = std::move(p.sources);
    // Every rank's store size: a `ready` must name bytes inside its
    // sender's store (stores may differ in size: one per node).
    std::uint64_t own = store.size();
    self->store_bytes_.assign(static_cast<std::size_t>(job.world), 0);
    if (int rc = MPI_Allgather(&own, 1, MPI_UINT64_T, self->store_bytes_.data(), 1, MPI_UINT64_T, job.comm);
        rc != MPI_SUCCESS) {
        return mpi_error("exchanging store sizes", rc);
    }

    // Watched: the ranks this one copies to and the ranks that copy to it,
    // so a dead node is noticed by its neighbours on both sides. The
    // heartbeat thread's addresses are exchanged on every rank (a
    // collective), watched or not.
    std::vector<int> watched(self->partners_);
    watched.insert(watched.end(), self->sources_.begin(), self->sources_.end());
    std::sort(watched.begin(), watched.end());
    watched.erase(std::unique(watched.begin(), watched.end()), watched.end());
    auto hb = Heartbeat::open();
    if (!hb) {
        log::warn("rank {}: {}: no peer is watched (a dead node is noticed only when Slurm notices it)", job.rank,
                  hb.status().message());
    }
    std::vector<std::uint8_t> hb_blob = hb ? (*hb)->local_blob() : std::vector<std::uint8_t>{};
    auto hb_blobs = allgather_bytes(job.comm, hb_blob.data(), hb_blob.size(), "exchanging heartbeat addresses");
    if (!hb_blobs) return hb_blobs.status();
    if (opts.peer_timeout_ms > 0) {
        self->watch_.emplace(watched, now_ms(), opts.peer_timeout_ms);
        if (hb) {
            Replicator *me = self.get();
            st = (*hb)->start(job.rank, *hb_blobs, std::move(watched), opts.peer_timeout_ms, drawn[1],
                              [me](int peer, double silent_ms, bool gone) { me->peer_lost(peer, silent_ms, gone); });
            if (!st) return st;
            self->heartbeat_ = std::move(*hb);
        }
    }
    return self;
}

void Replicator::checksum_and_announce(InFlightSave &save) {
    const std::optional<std::uint32_t> held = save.slot();
    if (!held) return;  // nothing staged: the save votes no
    const std::uint32_t slot = *held;
    double t0 = 0;  // the first piece checksummed: waiting for the copy is not checksum time
    store::SlotRecord rec = store_.read_record(slot);
    // In pieces, so a large shard does not silence the heartbeats, and
    // behind the copy while save() stages: the bytes are final once staged.
    // The shard is done only once staging has ended.
    constexpr std::uint64_t kCrcPiece = 256ull << 20;
    PieceCrc crc(std::uint64_t{1} << store::kPieceShift);  // the piece table and the whole, in one pass
    std::uint64_t off = 0, behind = 0;  // behind: checksummed while the copy ran
    for (;;) {
        InFlightSave::Staged s = save.wait_staged(off);
        std::uint64_t upto = s.staging ? s.upto : rec.payload_bytes;
        send_heartbeats(false);
        if (s.failed) {
            save.staging_failed();  // save() could not stage this shard: vote no, copy nothing
            return;
        }
        if (off < upto) {
            if (t0 == 0) t0 = now_ms();
            std::uint64_t n = std::min(kCrcPiece, upto - off);
            // While save() copies, the application waits for it: its cores
            // help the checksum keep up with a GPU's copy, which outruns
            // one thread five times. Afterwards one thread, beside
            // training (on an H200 node the two variants finished equally
            // late: the copy and the threads share the memory's bandwidth).
            const std::uint8_t *piece = store_.base() + rec.offset + off;
            crc.add(piece, n, s.staging ? job_.crc_threads : 1);
            off += n;
            if (s.staging) behind += n;
        } else if (!s.staging && off >= rec.payload_bytes) {
            break;
        }
    }
    log::debug("version {}: {} of {} bytes checksummed while save() was copying", rec.version, behind,
               rec.payload_bytes);
    rec.payload_crc = crc.whole();
    rec.piece_shift = store_.write_piece_table(rec, crc.pieces());
    rec.state = static_cast<std::uint32_t>(store::SlotState::complete);
    store_.write_record(slot, rec);
    double t1 = now_ms();
    if (t0 == 0) t0 = t1;
    bool announced = true;
    for (int p : partners_) {
        TransportMsg m{};
        m.type = TransportMsg::ready;
        m.from = static_cast<std::uint32_t>(job_.rank);
        m.owner = static_cast<std::uint32_t>(job_.rank);
        m.version = rec.version;
        m.offset = rec.offset;
        m.bytes = rec.payload_bytes;
        m.crc = rec.payload_crc;
        m.nregions = rec.nregions;
        Status st = transport_->send(p, m);
        if (!st) {
            log::warn("version {}: cannot reach partner rank {}: {}", rec.version, p, st.message());
            announced = false;
        }
    }
    // The answers this version is owed (handled by this thread, later).
    save.checksummed(msgcheck::AckTally(rec.version, partners_), t1, t1 + replica_timeout_ms_, announced,
                     partners_.empty(), t1 - t0);
}

void Replicator::serve(InFlightSave &save) {
    if (transport_) {
        TransportMsg m;
        while (transport_->poll(m)) handle_msg(m, save);
        send_heartbeats(false);
    }
    if (auto late = save.expire(now_ms())) {
        log::warn("version {}: {} of {} partners acknowledged their copy within {} ms", late->version, late->acked,
                  partners_.size(), replica_timeout_ms_);
    }
}

void Replicator::wait(int wake_fd) {
    if (transport_) {
        transport_->wait(wake_fd, 100);
    } else {
        struct pollfd pfd = {wake_fd, POLLIN, 0};
        ::poll(&pfd, 1, 1000);
    }
}

void Replicator::farewell() {
    if (!watch_) return;
    // The datagrams first: the peers' heartbeat threads read them at once,
    // the transport's message waits for a worker that may be busy.
    if (heartbeat_) heartbeat_->stop(true);
    TransportMsg bye{};
    bye.type = TransportMsg::bye;
    bye.from = static_cast<std::uint32_t>(job_.rank);
    for (int p : watch_->peers()) (void)transport_->send(p, bye);
    if (heartbeat_) {
        log::info("rank {}: the longest silence of a watched peer was {:.0f} ms ({}={})", job_.rank,
                   heartbeat_->longest_silence_ms(), env::kPeerTimeout, heartbeat_->timeout_ms());
    }
}

Status Replicator::pull(int peer, std::uint64_t offset, std::uint8_t *dst, std::uint64_t bytes,
                        const std::function<void(std::uint64_t)> &landed) {
    Status st;
    const std::uint64_t piece = transport_->pull_piece();
    for (std::uint64_t off = 0; off < bytes && st; off += piece) {
        send_heartbeats(false);
        const std::uint64_t n = std::min<std::uint64_t>(piece, bytes - off);
        Transport::Landed in_piece;
        if (landed) in_piece = [&landed, off](std::uint64_t k) { landed(off + k); };
        st = transport_->get(peer, offset + off, dst + off, n, replica_timeout_ms_, in_piece);
        if (st && in_piece) in_piece(n);
    }
    return st;
}

// Heartbeats over the transport to the watched peers, at most once an
// interval (force: now). The heartbeat thread's are the ones no work holds
// up; these are the second path, for a network that drops its datagrams.
void Replicator::send_heartbeats(bool force) {
    if (!watch_ || !(watch_->heartbeat_due(now_ms()) || force)) return;
    TransportMsg hb{};
    hb.type = TransportMsg::heartbeat;
    hb.from = static_cast<std::uint32_t>(job_.rank);
    for (int p : watch_->peers()) (void)transport_->send(p, hb);  // silence is what counts
}

// A watched peer is gone (its node died, or its process did without
// closing). Whatever the application's thread is doing (most likely
// blocked in an MPI call to that peer, for as long as TCP takes to give
// up), this step cannot finish: end the process with a status that says
// "relaunch me", at once, rather than after Slurm's node timeout. The line
// keeps "peer rank P on NODE silent for S s": tierckpt run reads it.
void Replicator::peer_lost(int peer, double silent_ms, bool gone) {
    const char *why = gone ? "; its node answers that its heartbeat port is closed: its process ended without closing" : "";
    log::error("rank {} on {}: peer rank {} on {} silent for {:.1f} s{} ({}={}): ending this process with exit "
               "status {} so the step can be relaunched without that node",
               job_.rank, job_.host(job_.rank), peer, job_.host(peer), silent_ms / 1000.0, why, env::kPeerTimeout,
               heartbeat_ ? heartbeat_->timeout_ms() : 0, TIERCKPT_EXIT_PEER_LOST);
    std::fflush(stdout);
    std::fflush(stderr);
    ::_exit(TIERCKPT_EXIT_PEER_LOST);
}

// A peer's message the checks refuse: told at debug level, and now and
// then at warn level, so a peer sending nonsense cannot flood the log.
void Replicator::drop_msg(const TransportMsg &m, const char *why) {
    drops_.report(now_ms(), fmt::format("rank {}: dropped a {} message naming rank {} version {}: {}", job_.rank,
                                        msgcheck::type_name(m.type), m.from, m.version, why));
}

// Every field a peer sends is checked before use (msg_check.hpp): the
// transports check lengths and, where they can, the sender's address.
void Replicator::handle_msg(const TransportMsg &m, InFlightSave &save) {
    const auto world = static_cast<std::uint32_t>(job_.world), self = static_cast<std::uint32_t>(job_.rank);
    msgcheck::Reject why = msgcheck::check_header(m, world, self);
    if (!why && m.type == TransportMsg::ready) {
        why = msgcheck::check_ready(m, sources_, store_bytes_[m.from], store_.size());
    } else if (!why && m.type == TransportMsg::done) {
        why = msgcheck::check_done(m, self);
    }
    if (why) return drop_msg(m, why);
    if (heartbeat_) {
        if (m.type == TransportMsg::bye) heartbeat_->left(static_cast<int>(m.from));
        else heartbeat_->heard(static_cast<int>(m.from));
    }
    if (m.type == TransportMsg::heartbeat || m.type == TransportMsg::bye) return;
    if (m.type == TransportMsg::done) {
        // Counted once per partner that owes this version an answer.
        auto outcome = save.ack(m.from, m.version, m.ok != 0, now_ms());
        if (outcome == msgcheck::AckTally::Outcome::duplicate) {
            drop_msg(m, "a second answer from this partner for this version");
        } else if (outcome == msgcheck::AckTally::Outcome::not_owed) {
            drop_msg(m, "an answer from a rank that keeps no copy of this rank's shards");
        }
        return;  // other_version: a late answer (after a timeout), harmless
    }
    if (test_hook("TIERCKPT_TEST_IGNORE_REPLICA", m.version, job_.rank)) return;
    keep_copy(m);
}

// Keeps a copy of another node's shard: pulls it, verifies it, says so.
void Replicator::keep_copy(const TransportMsg &m) {
    TransportMsg reply{};
    reply.type = TransportMsg::done;
    reply.from = static_cast<std::uint32_t>(job_.rank);
    reply.owner = m.owner;
    reply.version = m.version;
    Status st;
    std::uint32_t slot = 0;
    for (int attempt = 0; attempt < 3; ++attempt) {
        const std::uint64_t keep_from = hooks_.protect_from();
        {
            auto guard = store_.lock();
            auto s = store_.allocate(m.owner, static_cast<std::uint32_t>(job_.world), m.version, m.bytes, keep_from,
                                     m.nregions, store::kReplica, job_.rank, -1, hooks_.pinned());
            if (s) {
                slot = *s;
                st = Status::ok();
                break;
            }
            st = s.status();
        }
        if (st.code() != TIERCKPT_ERR_NO_MEMORY) break;
        if (hooks_.wait_for_flush_slot()) continue;
        // The owner announced this version after the vote that decided the
        // one before it; this rank's application thread, which left the
        // same vote, may not have applied the verdict yet (the commit that
        // frees the older copies). Wait for it, briefly, rather than fail
        // a version for want of room that is about to be free.
        const double until = now_ms() + kVerdictLagMs;
        while (hooks_.protect_from() == keep_from && now_ms() < until) ::usleep(1000);
        if (hooks_.protect_from() == keep_from) break;
    }
    if (st) {
        store::SlotRecord rec = store_.read_record(slot);
        std::vector<std::uint32_t> pieces;
        // Verified after the transfer; a transfer that arrives damaged is
        // tried once more before the copy is given up.
        for (int attempt = 0; attempt < 2; ++attempt) {
            const double t0 = now_ms();
            st = pull(static_cast<int>(m.from), m.offset, store_.base() + rec.offset, m.bytes);
            const double t1 = now_ms();
            // The piece table comes from the copy itself, in the same pass:
            // it is believed only because its pieces join into m.crc.
            PieceCrc crc(std::uint64_t{1} << store::kPieceShift);
            if (st) crc.add(store_.base() + rec.offset, m.bytes);
            const bool good = st && crc.whole() == m.crc;
            if (good) pieces = crc.pieces();
            log::debug("replica of rank {} version {}: {} bytes pulled in {:.1f} ms, verified in {:.1f} ms", m.owner,
                       m.version, m.bytes, t1 - t0, now_ms() - t1);
            if (st && !good) {
                st = error(TIERCKPT_ERR_CORRUPT, "the copy does not match its checksum");
                log::info("replica of rank {} version {}: {} (attempt {})", m.owner, m.version, st.message(),
                          attempt + 1);
                continue;
            }
            break;
        }
        if (st) {
            rec.payload_crc = m.crc;
            rec.piece_shift = store_.write_piece_table(rec, pieces);
            rec.state = static_cast<std::uint32_t>(store::SlotState::complete);
            store_.write_record(slot, rec);
        }
    }
    if (!st) log::warn("replica of rank {} version {}: {}", m.owner, m.version, st.message());
    reply.ok = st.is_ok() ? 1 : 0;
    Status sent = transport_->send(static_cast<int>(m.from), reply);
    if (!sent) log::warn("cannot acknowledge rank {}'s version {}: {}", m.from, m.version, sent.message());
}

}  // namespace tck
