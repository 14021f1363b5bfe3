// UCX (ucp) backend: active messages for control; shards move by
// receiver-driven pulls, one of two ways (TIERCKPT_UCX_PULL):
//  am (default): the reader asks the holder for a byte range; the holder's
//    worker answers with 4 MiB active messages, many in flight, which UCX
//    sends by its rendezvous protocol (zero-copy RDMA on InfiniBand/RoCE,
//    pipelined fragments on TCP) and the reader receives straight into its
//    store with ucp_am_recv_data_nbx.
//  get: one-sided ucp_get_nbx reads.
// Why am: over TCP UCX emulates RMA; make bench measured here ucx_perftest
// ucp_get 0.68 GB/s, ucp_am_bw 2.40 GB/s, tag_bw 2.38 GB/s between two
// namespace nodes (only 0.85 GB/s for am with one message in flight: the
// depth is what counts).
//
// Trust: UCX's active-message API does not say which connection a message
// came in on (the reply endpoint, where a sender asks for one, is found by
// an endpoint id the sender writes into the message), so this rank cannot
// tell who sent a message; it checks what a message says instead
// (msg_check.hpp): its exact length, a sender that is a rank of the job,
// ranges inside the store; the checkpointer checks that rank is one that
// should send it. A pull is answered to the endpoint of the rank the
// request names, never to whoever sent it, and a piece lands only inside
// the range of a pull this rank asked for.
#include "ucx.hpp"

#include <poll.h>
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include <ucp/api/ucp.h>

#include "common/clock.hpp"
#include "common/env_names.hpp"
#include "common/log.hpp"
#include "msg_check.hpp"

namespace tck {

namespace {
// A message to a dead peer must not hold the worker for long: it watches
// its peers' heartbeats too.
constexpr int kSendTimeoutMs = 5000;
}  // namespace

namespace {

constexpr unsigned kAmId = 17;      // a TransportMsg
constexpr unsigned kPullAmId = 18;  // "send me these bytes of your store"
constexpr unsigned kDataAmId = 19;  // a piece of them
constexpr std::size_t kAmPiece = 4u << 20;
// The most one pull request asks for (pull_piece() with am); a holder
// serves no larger request, whatever its own TIERCKPT_UCX_PULL.
constexpr std::size_t kAmPullMax = 32 * kAmPiece;

struct PullReq {
    std::uint64_t token;       // the job's (set_peers)
    std::uint64_t id;
    std::uint64_t src_offset;  // in the holder's store
    std::uint64_t dst_offset;  // in the reader's store
    std::uint64_t len;
    std::uint32_t from;        // the reader's rank
    std::uint32_t pad;
};
struct DataHdr {
    std::uint64_t token;       // the job's (set_peers)
    std::uint64_t id;
    std::uint64_t dst_offset;
    std::uint64_t len;
};

Status ucs_error(const char *what, ucs_status_t st) {
    return error(TIERCKPT_ERR_PEER, "UCX: {}: {}", what, ucs_status_string(st));
}

class UcxTransport final : public Transport {
public:
    ~UcxTransport() override {
        for (auto &p : peers_) {
            if (p.rkey) ucp_rkey_destroy(p.rkey);
            if (p.ep) {
                ucp_request_param_t prm{};
                prm.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
                prm.flags = UCP_EP_CLOSE_FLAG_FORCE;
                void *req = ucp_ep_close_nbx(p.ep, &prm);
                if (UCS_PTR_IS_PTR(req)) {
                    while (ucp_request_check_status(req) == UCS_INPROGRESS) ucp_worker_progress(worker_);
                    ucp_request_free(req);
                }
            }
        }
        for (auto &r : rndv_) ucp_am_data_release(worker_, r.desc);
        if (memh_) ucp_mem_unmap(ctx_, memh_);
        if (worker_) ucp_worker_destroy(worker_);
        if (ctx_) ucp_cleanup(ctx_);
    }

    Status init() {
        if (const char *v = std::getenv(env::kUcxPull); v && *v) {
            if (std::strcmp(v, "am") == 0) {
                pull_am_ = true;
            } else if (std::strcmp(v, "get") == 0) {
                pull_am_ = false;
            } else {
                return error(TIERCKPT_ERR_INVALID, "{}={}: give am or get", env::kUcxPull, v);
            }
        }
        ucp_config_t *cfg = nullptr;
        ucs_status_t st = ucp_config_read(nullptr, nullptr, &cfg);
        if (st != UCS_OK) return ucs_error("ucp_config_read", st);
        ucp_params_t p{};
        p.field_mask = UCP_PARAM_FIELD_FEATURES;
        p.features = UCP_FEATURE_RMA | UCP_FEATURE_AM | UCP_FEATURE_WAKEUP;
        st = ucp_init(&p, cfg, &ctx_);
        ucp_config_release(cfg);
        if (st != UCS_OK) return ucs_error("ucp_init", st);
        ucp_worker_params_t wp{};
        wp.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
        wp.thread_mode = UCS_THREAD_MODE_SERIALIZED;
        st = ucp_worker_create(ctx_, &wp, &worker_);
        if (st != UCS_OK) return ucs_error("ucp_worker_create", st);
        st = ucp_worker_get_efd(worker_, &efd_);
        if (st != UCS_OK) return ucs_error("ucp_worker_get_efd", st);
        ucp_am_handler_param_t hp{};
        hp.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB | UCP_AM_HANDLER_PARAM_FIELD_ARG;
        hp.id = kAmId;
        hp.cb = &UcxTransport::on_am;
        hp.arg = this;
        st = ucp_worker_set_am_recv_handler(worker_, &hp);
        if (st != UCS_OK) return ucs_error("ucp_worker_set_am_recv_handler", st);
        hp.id = kPullAmId;
        hp.cb = &UcxTransport::on_pull_am;
        st = ucp_worker_set_am_recv_handler(worker_, &hp);
        if (st != UCS_OK) return ucs_error("ucp_worker_set_am_recv_handler", st);
        hp.id = kDataAmId;
        hp.cb = &UcxTransport::on_data_am;
        st = ucp_worker_set_am_recv_handler(worker_, &hp);
        if (st != UCS_OK) return ucs_error("ucp_worker_set_am_recv_handler", st);
        return Status::ok();
    }

    const char *name() const override { return "ucx"; }
    // A pull of this size keeps enough 4 MiB messages in flight.
    std::size_t pull_piece() const override { return pull_am_ ? kAmPullMax : kAmPiece; }

    Result<std::vector<std::uint8_t>> local_blob(void *base, std::size_t len) override {
        ucp_mem_map_params_t mp{};
        mp.field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH;
        mp.address = base;
        mp.length = len;
        ucs_status_t st = ucp_mem_map(ctx_, &mp, &memh_);
        if (st != UCS_OK) return ucs_error("ucp_mem_map of the node store", st);
        base_ = static_cast<std::uint8_t *>(base);
        len_ = len;
        void *rkey = nullptr;
        size_t rkey_len = 0;
        st = ucp_rkey_pack(ctx_, memh_, &rkey, &rkey_len);
        if (st != UCS_OK) return ucs_error("ucp_rkey_pack", st);
        ucp_address_t *addr = nullptr;
        size_t addr_len = 0;
        st = ucp_worker_get_address(worker_, &addr, &addr_len);
        if (st != UCS_OK) {
            ucp_rkey_buffer_release(rkey);
            return ucs_error("ucp_worker_get_address", st);
        }
        // [base u64][addr_len u64][rkey_len u64][addr][rkey]
        std::vector<std::uint8_t> blob(24 + addr_len + rkey_len);
        std::uint64_t hdr[3] = {reinterpret_cast<std::uint64_t>(base), addr_len, rkey_len};
        std::memcpy(blob.data(), hdr, 24);
        std::memcpy(blob.data() + 24, addr, addr_len);
        std::memcpy(blob.data() + 24 + addr_len, rkey, rkey_len);
        ucp_worker_release_address(worker_, addr);
        ucp_rkey_buffer_release(rkey);
        return blob;
    }

    Status set_peers(const std::vector<std::vector<std::uint8_t>> &blobs, int self, std::uint64_t job_token) override {
        token_ = job_token;
        self_ = static_cast<std::uint32_t>(self);
        peers_.resize(blobs.size());
        for (std::size_t i = 0; i < blobs.size(); ++i) {
            if (blobs[i].size() < 24) return error(TIERCKPT_ERR_INTERNAL, "UCX: short peer blob");
            std::uint64_t hdr[3];
            std::memcpy(hdr, blobs[i].data(), 24);
            peers_[i].base = hdr[0];
            peers_[i].addr.assign(blobs[i].begin() + 24, blobs[i].begin() + 24 + static_cast<long>(hdr[1]));
            peers_[i].rkey_buf.assign(blobs[i].begin() + 24 + static_cast<long>(hdr[1]), blobs[i].end());
        }
        return Status::ok();
    }

    Status send(int peer, const TransportMsg &m) override {
        auto ep = endpoint(peer);
        if (!ep) return ep.status();
        ucp_request_param_t prm{};
        prm.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
        prm.flags = UCP_AM_SEND_FLAG_REPLY;
        TransportMsg stamped = m;
        stamped.token = token_;
        void *req = ucp_am_send_nbx(*ep, kAmId, &stamped, sizeof stamped, nullptr, 0, &prm);
        return finish(req, "message", kSendTimeoutMs);
    }

    Status get(int peer, std::uint64_t offset, void *local, std::size_t len, int timeout_ms,
               const Landed &landed) override {
        if (pull_am_) return pull_am(peer, offset, static_cast<std::uint8_t *>(local), len, timeout_ms, landed);
        auto ep = endpoint(peer);
        if (!ep) return ep.status();
        Peer &p = peers_[static_cast<std::size_t>(peer)];
        if (!p.rkey) {
            ucs_status_t st = ucp_ep_rkey_unpack(*ep, p.rkey_buf.data(), &p.rkey);
            if (st != UCS_OK) return ucs_error("ucp_ep_rkey_unpack", st);
        }
        ucp_request_param_t prm{};
        void *req = ucp_get_nbx(*ep, local, len, p.base + offset, p.rkey, &prm);
        return finish(req, "get", timeout_ms);
    }

    bool poll(TransportMsg &m) override {
        while (progress()) {
        }
        return inbox_.pop(m);
    }

    void wait(int wake_fd, int timeout_ms) override {
        if (!inbox_.empty() || !to_serve_.empty() || !rndv_.empty()) return;
        // Pieces still being sent need progress as soon as the socket
        // drains, which the event fd does not say: poll the worker without
        // sleeping while they last (a transfer's worth of time).
        if (sends_in_flight_ > 0) {
            sched_yield();
            return;
        }
        ucs_status_t st = ucp_worker_arm(worker_);
        if (st == UCS_ERR_BUSY) return;  // events pending: progress again
        struct pollfd fds[2] = {{efd_, POLLIN, 0}, {wake_fd, POLLIN, 0}};
        ::poll(fds, wake_fd >= 0 ? 2 : 1, timeout_ms);
    }

private:
    // A pull this side asked for: bytes landed so far.
    struct Pending {
        enum : char { kAwaited = 0, kReceiving = 1, kLanded = 2 };
        std::uint64_t dst = 0;   // where the pull lands (offset in our store)
        std::uint64_t len = 0;
        unsigned receiving = 0;  // ucp_am_recv_data_nbx posted, not completed
        bool failed = false;
        std::vector<char> piece;  // per piece: kAwaited, kReceiving, kLanded
        std::size_t prefix = 0;   // pieces landed from the start
        void piece_landed(std::size_t i) {
            if (i < piece.size()) piece[i] = kLanded;
            while (prefix < piece.size() && piece[prefix] == kLanded) ++prefix;
        }
        std::uint64_t prefix_bytes() const { return std::min<std::uint64_t>(prefix * kAmPiece, len); }
        bool complete() const { return prefix == piece.size(); }
    };
    struct Rndv {
        DataHdr hdr;
        std::size_t index;  // the piece's number in its pull
        void *desc;
    };
    struct RecvCtx {
        UcxTransport *self;
        std::uint64_t id;
        std::size_t index;
    };
    struct SendCtx {
        UcxTransport *self;
        DataHdr hdr;  // must live until the send completes
    };

    // Whether [off, off+n) lies inside the registered store (offsets and
    // lengths come from peers).
    bool in_store(std::uint64_t off, std::uint64_t n) const { return base_ && msgcheck::range_in(off, n, len_); }

    // Progress plus the work callbacks queued: serving pulls, receiving
    // pieces. True when anything happened.
    bool progress() {
        bool any = ucp_worker_progress(worker_) != 0;
        while (!rndv_.empty()) {
            Rndv r = rndv_.front();
            rndv_.pop_front();
            receive(r);
            any = true;
        }
        while (!to_serve_.empty()) {
            PullReq q = to_serve_.front();
            to_serve_.pop_front();
            serve(q);
            any = true;
        }
        return any;
    }

    Status pull_am(int peer, std::uint64_t offset, std::uint8_t *dst, std::size_t len, int timeout_ms,
                   const Landed &landed) {
        if (!base_ || dst < base_ || !in_store(static_cast<std::uint64_t>(dst - base_), len)) {
            return error(TIERCKPT_ERR_INTERNAL, "UCX: a pull must land in the registered store");
        }
        auto ep = endpoint(peer);
        if (!ep) return ep.status();
        std::uint64_t id = next_id_++;
        Pending fresh;
        fresh.dst = static_cast<std::uint64_t>(dst - base_);
        fresh.len = len;
        fresh.piece.assign((len + kAmPiece - 1) / kAmPiece, Pending::kAwaited);
        pending_[id] = std::move(fresh);
        PullReq q{token_, id, offset, static_cast<std::uint64_t>(dst - base_), len, self_, 0};
        ucp_request_param_t prm{};
        void *req = ucp_am_send_nbx(*ep, kPullAmId, &q, sizeof q, nullptr, 0, &prm);
        Status st = finish(req, "pull request", kSendTimeoutMs);
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        std::uint64_t told = 0;
        while (st) {
            const Pending &p = pending_[id];
            if (landed && p.prefix_bytes() > told) landed(told = p.prefix_bytes());
            if (p.failed) {
                st = error(TIERCKPT_ERR_PEER, "UCX: a piece from rank {} failed to arrive", peer);
            } else if (p.complete()) {
                break;
            } else if (peers_[static_cast<std::size_t>(peer)].failed) {
                st = error(TIERCKPT_ERR_PEER, "UCX: the connection to rank {} failed", peer);
            } else if (!progress()) {
                if (std::chrono::steady_clock::now() > deadline) {
                    st = error(TIERCKPT_ERR_TIMEOUT, "UCX: pull of {} bytes from rank {} did not finish in {} ms", len,
                               peer, timeout_ms);
                } else {
                    wait(-1, 10);
                }
            }
        }
        // Receives already posted write into dst: let them end (a little
        // while) before the caller reuses it; later pieces are dropped.
        auto grace = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        while (pending_[id].receiving > 0 && std::chrono::steady_clock::now() < grace) {
            if (!progress()) wait(-1, 1);
        }
        pending_.erase(id);
        return st;
    }

    // Holder: send [src, src+len) as pieces; they complete in the
    // background while the worker goes on.
    void serve(const PullReq &q) {
        // Checked when it came in (on_pull_am); the store is the same.
        auto ep = endpoint(static_cast<int>(q.from));
        if (!ep) return;  // the reader times out
        for (std::uint64_t off = 0; off < q.len; off += kAmPiece) {
            auto *ctx = new SendCtx{this, {token_, q.id, q.dst_offset + off,
                                           std::min<std::uint64_t>(kAmPiece, q.len - off)}};
            ucp_request_param_t prm{};
            prm.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
            prm.cb.send = &UcxTransport::on_piece_sent;
            prm.user_data = ctx;
            void *req = ucp_am_send_nbx(*ep, kDataAmId, &ctx->hdr, sizeof ctx->hdr, base_ + q.src_offset + off,
                                        ctx->hdr.len, &prm);
            if (UCS_PTR_IS_PTR(req)) {
                ++sends_in_flight_;
            } else {
                if (UCS_PTR_IS_ERR(req)) log::debug("UCX: a piece to rank {}: {}", q.from, ucs_status_string(UCS_PTR_STATUS(req)));
                delete ctx;
            }
        }
    }

    static void on_piece_sent(void *req, ucs_status_t st, void *user) {
        auto *ctx = static_cast<SendCtx *>(user);
        if (st != UCS_OK) log::debug("UCX: a piece failed: {}", ucs_status_string(st));
        --ctx->self->sends_in_flight_;
        delete ctx;
        ucp_request_free(req);
    }

    // Reader: a rendezvous piece announced; receive it into the store.
    // Checked when it was announced (on_data_am), and marked kReceiving.
    void receive(const Rndv &r) {
        auto it = pending_.find(r.hdr.id);
        if (it == pending_.end()) {
            ucp_am_data_release(worker_, r.desc);  // a pull given up meanwhile
            return;
        }
        auto *ctx = new RecvCtx{this, r.hdr.id, r.index};
        ucp_request_param_t prm{};
        prm.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
        prm.cb.recv_am = &UcxTransport::on_piece_received;
        prm.user_data = ctx;
        void *req = ucp_am_recv_data_nbx(worker_, r.desc, base_ + r.hdr.dst_offset, r.hdr.len, &prm);
        if (UCS_PTR_IS_PTR(req)) {
            ++it->second.receiving;
            return;
        }
        if (UCS_PTR_IS_ERR(req)) it->second.failed = true;
        else it->second.piece_landed(r.index);
        delete ctx;
    }

    static void on_piece_received(void *req, ucs_status_t st, size_t, void *user) {
        auto *ctx = static_cast<RecvCtx *>(user);
        auto it = ctx->self->pending_.find(ctx->id);
        if (it != ctx->self->pending_.end()) {
            --it->second.receiving;
            if (st == UCS_OK) it->second.piece_landed(ctx->index);
            else it->second.failed = true;
        }
        delete ctx;
        ucp_request_free(req);
    }

    // A message this side refuses: told at debug level, and now and then
    // at warn level, so a peer sending nonsense cannot flood the log.
    void drop(const char *what, const char *why) {
        drops_.report(now_ms(), fmt::format("UCX: dropped a {}: {}", what, why));
    }

    // Whatever does not carry the job's token (set_peers) is dropped unread:
    // it comes from outside the job.
    bool from_job(std::uint64_t token, const char *what) {
        if (token == token_) return true;
        drop(what, "not from this job (wrong token)");
        return false;
    }

    // A pull request: a header of its exact size and no payload, from a
    // rank of the job, for a range of this store no larger than a reader
    // asks at once. Served later, from progress().
    static ucs_status_t on_pull_am(void *arg, const void *header, size_t header_length, void *, size_t length,
                                   const ucp_am_recv_param_t *) {
        auto *self = static_cast<UcxTransport *>(arg);
        if (header_length != sizeof(PullReq) || length != 0) {
            self->drop("pull request", "not the size of a pull request");
            return UCS_OK;
        }
        PullReq q;
        std::memcpy(&q, header, sizeof q);
        if (!self->from_job(q.token, "pull request")) return UCS_OK;
        msgcheck::Reject why =
            msgcheck::check_pull_request(q.from, q.src_offset, q.len, static_cast<std::uint32_t>(self->peers_.size()),
                                         self->self_, self->base_ ? self->len_ : 0, kAmPullMax);
        if (why) {
            self->drop("pull request", why);
            return UCS_OK;
        }
        self->to_serve_.push_back(q);
        return UCS_OK;
    }

    // A piece of a pull: only one this side awaits (a pull in progress,
    // the piece inside its range at a piece boundary, of the piece's
    // length, not arrived or arriving already). Anything else is dropped
    // (UCS_OK: UCX drops a rendezvous piece nobody receives).
    static ucs_status_t on_data_am(void *arg, const void *header, size_t header_length, void *data, size_t length,
                                   const ucp_am_recv_param_t *param) {
        auto *self = static_cast<UcxTransport *>(arg);
        if (header_length != sizeof(DataHdr)) {
            self->drop("piece", "header not the size of a piece's");
            return UCS_OK;
        }
        DataHdr h;
        std::memcpy(&h, header, sizeof h);
        if (!self->from_job(h.token, "piece")) return UCS_OK;
        auto it = self->pending_.find(h.id);
        if (it == self->pending_.end()) {
            // Most likely a late piece of a pull given up (timeout): normal.
            log::debug("UCX: a piece of pull {}, which is not in progress: dropped", h.id);
            return UCS_OK;
        }
        Pending &p = it->second;
        std::size_t index = 0;
        msgcheck::Reject why = msgcheck::check_piece(p.dst, p.len, kAmPiece, h.dst_offset, h.len, length, &index);
        if (!why && p.piece[index] != Pending::kAwaited) why = "piece arrived twice";
        if (!why && !self->in_store(h.dst_offset, h.len)) why = "piece outside this store";  // p's range is inside
        if (why) {
            self->drop("piece", why);
            return UCS_OK;
        }
        if (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) {
            // Received outside the callback, as UCX's examples do.
            p.piece[index] = Pending::kReceiving;
            self->rndv_.push_back({h, index, data});
            return UCS_INPROGRESS;
        }
        // Eager: the bytes are here now.
        std::memcpy(self->base_ + h.dst_offset, data, length);
        p.piece_landed(index);
        return UCS_OK;
    }

    struct Peer {
        std::uint64_t base = 0;
        std::vector<std::uint8_t> addr, rkey_buf;
        ucp_ep_h ep = nullptr;
        ucp_rkey_h rkey = nullptr;
        bool failed = false;
    };

    // A control message: a header of exactly a TransportMsg and no
    // payload, naming a rank of the job (see the top of this file for why
    // not more); the checkpointer checks the rest.
    static ucs_status_t on_am(void *arg, const void *header, size_t header_length, void *, size_t length,
                              const ucp_am_recv_param_t *) {
        auto *self = static_cast<UcxTransport *>(arg);
        if (header_length != sizeof(TransportMsg) || length != 0) {
            self->drop("control message", "not the size of a control message");
            return UCS_OK;
        }
        TransportMsg m;
        std::memcpy(&m, header, sizeof m);
        if (!self->from_job(m.token, "control message")) return UCS_OK;
        if (m.from >= self->peers_.size()) {
            self->drop("control message", "sender is not a rank of the job");
            return UCS_OK;
        }
        self->inbox_.push(m);
        return UCS_OK;
    }

    static void on_ep_error(void *arg, ucp_ep_h, ucs_status_t st) {
        auto *p = static_cast<Peer *>(arg);
        // Reported when an operation on it fails; peers closing at the end
        // of a step land here too.
        p->failed = true;
        log::debug("UCX: a peer's endpoint failed: {}", ucs_status_string(st));
    }

    Result<ucp_ep_h> endpoint(int peer) {
        if (peer < 0 || static_cast<std::size_t>(peer) >= peers_.size()) {
            return error(TIERCKPT_ERR_INTERNAL, "UCX: no peer {}", peer);
        }
        Peer &p = peers_[static_cast<std::size_t>(peer)];
        if (p.failed) return error(TIERCKPT_ERR_PEER, "UCX: the connection to rank {} failed", peer);
        if (p.ep) return p.ep;
        ucp_ep_params_t ep{};
        ep.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                        UCP_EP_PARAM_FIELD_ERR_HANDLER;
        ep.address = reinterpret_cast<const ucp_address_t *>(p.addr.data());
        ep.err_mode = UCP_ERR_HANDLING_MODE_PEER;
        ep.err_handler.cb = &UcxTransport::on_ep_error;
        ep.err_handler.arg = &p;
        ucs_status_t st = ucp_ep_create(worker_, &ep, &p.ep);
        if (st != UCS_OK) return ucs_error("ucp_ep_create", st);
        return p.ep;
    }

    Status finish(void *req, const char *what, int timeout_ms) {
        if (req == nullptr) return Status::ok();
        if (UCS_PTR_IS_ERR(req)) return ucs_error(what, UCS_PTR_STATUS(req));
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        ucs_status_t st;
        while ((st = ucp_request_check_status(req)) == UCS_INPROGRESS) {
            if (!progress()) {
                if (std::chrono::steady_clock::now() > deadline) {
                    ucp_request_cancel(worker_, req);
                    while (ucp_request_check_status(req) == UCS_INPROGRESS) ucp_worker_progress(worker_);
                    ucp_request_free(req);
                    return error(TIERCKPT_ERR_TIMEOUT, "UCX: {} did not finish in {} ms", what, timeout_ms);
                }
                wait(-1, 10);
            }
        }
        ucp_request_free(req);
        if (st != UCS_OK) return ucs_error(what, st);
        return Status::ok();
    }

    ucp_context_h ctx_ = nullptr;
    ucp_worker_h worker_ = nullptr;
    ucp_mem_h memh_ = nullptr;
    int efd_ = -1;
    std::vector<Peer> peers_;
    Inbox inbox_;
    bool pull_am_ = true;           // TIERCKPT_UCX_PULL
    std::uint8_t *base_ = nullptr;  // the registered store
    std::size_t len_ = 0;
    std::uint32_t self_ = 0;
    std::uint64_t token_ = 0;  // the job's (set_peers)
    std::uint64_t next_id_ = 1;
    std::map<std::uint64_t, Pending> pending_;
    std::deque<PullReq> to_serve_;
    std::deque<Rndv> rndv_;
    unsigned sends_in_flight_ = 0;
    msgcheck::DropLog drops_;
};

}  // namespace

Result<std::unique_ptr<Transport>> make_ucx_transport() { return make_initialized<UcxTransport>(); }

}  // namespace tck
