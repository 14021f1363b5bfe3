// UCX (ucp) backend: active messages for control, ucp_get_nbx for shards.
#include "ucx.hpp"

#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include <ucp/api/ucp.h>

#include "../../common/log.hpp"

namespace tck {

namespace {
// A message to a dead peer must not hold the worker for long: it watches
// its peers' heartbeats too.
constexpr int kSendTimeoutMs = 5000;
}  // namespace

namespace {

constexpr unsigned kAmId = 17;

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
        if (memh_) ucp_mem_unmap(ctx_, memh_);
        if (worker_) ucp_worker_destroy(worker_);
        if (ctx_) ucp_cleanup(ctx_);
    }

    Status init() {
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
        return Status::ok();
    }

    const char *name() const override { return "ucx"; }

    Result<std::vector<std::uint8_t>> local_blob(void *base, std::size_t len) override {
        ucp_mem_map_params_t mp{};
        mp.field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH;
        mp.address = base;
        mp.length = len;
        ucs_status_t st = ucp_mem_map(ctx_, &mp, &memh_);
        if (st != UCS_OK) return ucs_error("ucp_mem_map of the node store", st);
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

    Status set_peers(const std::vector<std::vector<std::uint8_t>> &blobs, int) override {
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
        void *req = ucp_am_send_nbx(*ep, kAmId, &m, sizeof m, nullptr, 0, &prm);
        return finish(req, "message", kSendTimeoutMs);
    }

    Status get(int peer, std::uint64_t offset, void *local, std::size_t len, int timeout_ms) override {
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
        while (ucp_worker_progress(worker_)) {
        }
        return inbox_.pop(m);
    }

    void wait(int wake_fd, int timeout_ms) override {
        if (!inbox_.empty()) return;
        ucs_status_t st = ucp_worker_arm(worker_);
        if (st == UCS_ERR_BUSY) return;  // events pending: progress again
        struct pollfd fds[2] = {{efd_, POLLIN, 0}, {wake_fd, POLLIN, 0}};
        ::poll(fds, wake_fd >= 0 ? 2 : 1, timeout_ms);
    }

private:
    struct Peer {
        std::uint64_t base = 0;
        std::vector<std::uint8_t> addr, rkey_buf;
        ucp_ep_h ep = nullptr;
        ucp_rkey_h rkey = nullptr;
        bool failed = false;
    };

    static ucs_status_t on_am(void *arg, const void *header, size_t header_length, void *, size_t,
                              const ucp_am_recv_param_t *) {
        auto *self = static_cast<UcxTransport *>(arg);
        if (header_length == sizeof(TransportMsg)) {
            TransportMsg m;
            std::memcpy(&m, header, sizeof m);
            self->inbox_.push(m);
        }
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
            if (!ucp_worker_progress(worker_)) {
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
};

}  // namespace

Result<std::unique_ptr<Transport>> make_ucx_transport() { return make_initialized<UcxTransport>(); }

}  // namespace tck
