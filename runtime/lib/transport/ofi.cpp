// libfabric backend (FI_EP_RDM with FI_MSG and FI_RMA): fi_inject/fi_recv
// for control messages, fi_read for shards (4 MiB reads, up to 32 in
// flight). Honours the provider's mr_mode
// bits, which EFA needs: FI_MR_LOCAL (the read's local buffer is inside our
// registered store), FI_MR_VIRT_ADDR (remote addresses are virtual, else
// offsets), FI_MR_PROV_KEY (the provider picks keys), FI_MR_ENDPOINT (the
// region is bound to the endpoint), FI_MR_ALLOCATED (the store is mapped
// memory). The provider comes from FI_PROVIDER ("efa", "verbs;ofi_rxm",
// "tcp;ofi_rxm", ...).
//
// Trust: the store is registered for remote reads under a key a peer must
// name; unless the provider picks keys, ours are random (mr_key.hpp).
// Received control messages are checked here for what only the transport
// knows (their length, and with FI_SOURCE the address they came from
// against the rank they name) and by the checkpointer for the rest
// (msg_check.hpp).
#include "ofi.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_eq.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>

#include "common/clock.hpp"
#include "common/log.hpp"
#include "common/random.hpp"
#include "common/unique_fd.hpp"
#include "mr_key.hpp"
#include "msg_check.hpp"

namespace tck {

namespace {

constexpr int kRecvBuffers = 64;
constexpr std::size_t kReadPiece = 4u << 20;
constexpr std::size_t kReadDepth = 32;

Status fi_error(const char *what, long rc) {
    return error(TIERCKPT_ERR_PEER, "libfabric: {}: {}", what, fi_strerror(static_cast<int>(-rc)));
}

// What OfiTransport::init asks fi_getinfo for.
fi_info *make_hints(std::uint64_t extra_caps) {
    fi_info *hints = fi_allocinfo();
    if (!hints) return nullptr;
    hints->caps = FI_MSG | FI_RMA | FI_READ | FI_REMOTE_READ | extra_caps;
    hints->ep_attr->type = FI_EP_RDM;
    hints->mode = FI_CONTEXT;
    hints->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY | FI_MR_ENDPOINT;
    hints->domain_attr->threading = FI_THREAD_DOMAIN;
    return hints;
}

class OfiTransport final : public Transport {
public:
    ~OfiTransport() override {
        if (recv_mr_) fi_close(&recv_mr_->fid);
        if (mr_) fi_close(&mr_->fid);
        if (ep_) fi_close(&ep_->fid);
        if (av_) fi_close(&av_->fid);
        if (cq_) fi_close(&cq_->fid);
        if (domain_) fi_close(&domain_->fid);
        if (fabric_) fi_close(&fabric_->fid);
        if (info_) fi_freeinfo(info_);
    }

    Status init() {
        fi_info *hints = make_hints(0);
        if (!hints) return error(TIERCKPT_ERR_NO_MEMORY, "libfabric: fi_allocinfo");
        int rc = fi_getinfo(FI_VERSION(1, 9), nullptr, nullptr, 0, hints, &info_);
        fi_freeinfo(hints);
        if (rc) return fi_error("fi_getinfo (no provider offers RDM with RMA reads; set FI_PROVIDER)", rc);
        // The address each message came from (FI_SOURCE), to check it
        // against the rank the message names. Asked of the provider and
        // domain chosen without it, so that asking never changes which
        // provider carries the shards; a provider without it still works
        // (the message's fields are checked, its sender cannot be).
        if (fi_info *src_hints = make_hints(FI_SOURCE)) {
            src_hints->fabric_attr->prov_name = ::strdup(info_->fabric_attr->prov_name);
            if (info_->fabric_attr->name) src_hints->fabric_attr->name = ::strdup(info_->fabric_attr->name);
            if (info_->domain_attr->name) src_hints->domain_attr->name = ::strdup(info_->domain_attr->name);
            fi_info *with_source = nullptr;
            if (fi_getinfo(FI_VERSION(1, 9), nullptr, nullptr, 0, src_hints, &with_source) == 0) {
                fi_freeinfo(info_);
                info_ = with_source;
                source_ = true;
            }
            fi_freeinfo(src_hints);
        }
        if (!source_) {
            log::info("libfabric: provider {} cannot say where a message came from (FI_SOURCE): messages are "
                      "checked by their contents only",
                      info_->fabric_attr->prov_name);
        }
        mr_mode_ = info_->domain_attr->mr_mode;
        mr_key_size_ = info_->domain_attr->mr_key_size;
        log::debug("libfabric: provider {}, mr_mode {:#x}, memory keys {} ({} bytes), FI_SOURCE {}",
                   info_->fabric_attr->prov_name, mr_mode_, (mr_mode_ & FI_MR_PROV_KEY) ? "the provider's" : "random",
                   mr_key_size_, source_ ? "yes" : "no");
        if ((rc = fi_fabric(info_->fabric_attr, &fabric_, nullptr))) return fi_error("fi_fabric", rc);
        if ((rc = fi_domain(fabric_, info_, &domain_, nullptr))) return fi_error("fi_domain", rc);
        fi_cq_attr cq_attr{};
        cq_attr.format = FI_CQ_FORMAT_MSG;
        cq_attr.size = 1024;
        // A file descriptor to sleep on where the provider has one (tcp,
        // verbs): the worker then wakes when a peer's read request comes in,
        // which it must serve on providers with manual progress. Otherwise
        // (efa) the worker polls in short ticks.
        cq_attr.wait_obj = FI_WAIT_FD;
        if (fi_cq_open(domain_, &cq_attr, &cq_, nullptr) == 0 && fi_control(&cq_->fid, FI_GETWAIT, &cq_fd_) == 0) {
            log::debug("libfabric: the completion queue has a wait fd");
        } else {
            if (cq_) fi_close(&cq_->fid);
            cq_ = nullptr;
            cq_fd_ = -1;
            cq_attr.wait_obj = FI_WAIT_NONE;
            if ((rc = fi_cq_open(domain_, &cq_attr, &cq_, nullptr))) return fi_error("fi_cq_open", rc);
        }
        fi_av_attr av_attr{};
        av_attr.type = FI_AV_TABLE;
        if ((rc = fi_av_open(domain_, &av_attr, &av_, nullptr))) return fi_error("fi_av_open", rc);
        if ((rc = fi_endpoint(domain_, info_, &ep_, nullptr))) return fi_error("fi_endpoint", rc);
        if ((rc = fi_ep_bind(ep_, &cq_->fid, FI_TRANSMIT | FI_RECV))) return fi_error("fi_ep_bind(cq)", rc);
        if ((rc = fi_ep_bind(ep_, &av_->fid, 0))) return fi_error("fi_ep_bind(av)", rc);
        if ((rc = fi_enable(ep_))) return fi_error("fi_enable", rc);
        return Status::ok();
    }

    const char *name() const override { return "ofi"; }

    Result<std::vector<std::uint8_t>> local_blob(void *base, std::size_t len) override {
        int rc;
        if (Status st = register_mr(base, len, FI_REMOTE_READ | FI_READ | FI_RECV | FI_SEND, nullptr, &mr_,
                                    "fi_mr_reg of the node store");
            !st) {
            return st;
        }
        if (mr_mode_ & FI_MR_ENDPOINT) {
            if ((rc = fi_mr_bind(mr_, &ep_->fid, 0))) return fi_error("fi_mr_bind", rc);
            if ((rc = fi_mr_enable(mr_))) return fi_error("fi_mr_enable", rc);
        }
        desc_ = fi_mr_desc(mr_);
        std::uint64_t key = fi_mr_key(mr_);
        // Receive buffers for control messages: a small area of our own
        // (registered separately when the provider wants local buffers so).
        recv_.resize(kRecvBuffers);
        if (mr_mode_ & FI_MR_LOCAL) {
            if (Status st = register_mr(recv_.data(), recv_.size() * sizeof(RecvSlot), FI_RECV, &key, &recv_mr_,
                                        "fi_mr_reg of receive buffers");
                !st) {
                return st;
            }
            if (mr_mode_ & FI_MR_ENDPOINT) {
                if ((rc = fi_mr_bind(recv_mr_, &ep_->fid, 0)) || (rc = fi_mr_enable(recv_mr_))) {
                    return fi_error("fi_mr_bind (receive buffers)", rc);
                }
            }
        }
        for (auto &slot : recv_) {
            Status st = post_recv(slot);
            if (!st) return st;
        }
        char addr[256];
        size_t addr_len = sizeof addr;
        if ((rc = fi_getname(&ep_->fid, addr, &addr_len))) return fi_error("fi_getname", rc);
        std::vector<std::uint8_t> blob(24 + addr_len);
        std::uint64_t hdr[3] = {reinterpret_cast<std::uint64_t>(base), key, addr_len};
        std::memcpy(blob.data(), hdr, 24);
        std::memcpy(blob.data() + 24, addr, addr_len);
        return blob;
    }

    Status set_peers(const std::vector<std::vector<std::uint8_t>> &blobs, int, std::uint64_t job_token) override {
        token_ = job_token;
        peers_.resize(blobs.size());
        for (std::size_t i = 0; i < blobs.size(); ++i) {
            std::uint64_t hdr[3];
            if (blobs[i].size() < 24) return error(TIERCKPT_ERR_INTERNAL, "libfabric: short peer blob");
            std::memcpy(hdr, blobs[i].data(), 24);
            peers_[i].base = hdr[0];
            peers_[i].key = hdr[1];
            int n = fi_av_insert(av_, blobs[i].data() + 24, 1, &peers_[i].addr, 0, nullptr);
            if (n != 1) return fi_error("fi_av_insert", n < 0 ? n : -FI_EINVAL);
        }
        return Status::ok();
    }

    Status send(int peer, const TransportMsg &m) override {
        if (peer < 0 || static_cast<std::size_t>(peer) >= peers_.size()) {
            return error(TIERCKPT_ERR_INTERNAL, "libfabric: no peer {}", peer);
        }
        // Bounded: a message to a dead peer must not hold the worker, which
        // watches its peers' heartbeats too.
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(5000);
        TransportMsg stamped = m;
        stamped.token = token_;
        for (;;) {
            ssize_t rc = fi_inject(ep_, &stamped, sizeof stamped, peers_[static_cast<std::size_t>(peer)].addr);
            if (rc == 0) return Status::ok();
            if (rc != -FI_EAGAIN) return fi_error("fi_inject", rc);
            if (std::chrono::steady_clock::now() > deadline) {
                return error(TIERCKPT_ERR_TIMEOUT, "libfabric: a message to rank {} could not leave in 5 s", peer);
            }
            drain();
            sched_yield();
        }
    }

    // Many reads in flight: one 4 MiB read at a time leaves the link idle
    // for a round trip per piece (make bench: see HACKING.md).
    std::size_t pull_piece() const override { return kReadDepth * kReadPiece; }

    Status get(int peer, std::uint64_t offset, void *local, std::size_t len, int timeout_ms,
               const Landed &landed) override {
        if (peer < 0 || static_cast<std::size_t>(peer) >= peers_.size()) {
            return error(TIERCKPT_ERR_INTERNAL, "libfabric: no peer {}", peer);
        }
        const Peer &p = peers_[static_cast<std::size_t>(peer)];
        const std::uint64_t raddr = (mr_mode_ & FI_MR_VIRT_ADDR) ? p.base + offset : offset;
        auto *dst = static_cast<std::uint8_t *>(local);
        const std::size_t pieces = (len + kReadPiece - 1) / kReadPiece;
        std::vector<ReadCtx> ctx(pieces);  // stable addresses: completions point here
        std::size_t posted = 0, done = 0, prefix = 0;
        Status st;
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        while (st && done < pieces) {
            bool progress = false;
            while (posted < pieces && posted - done < kReadDepth) {
                std::size_t off = posted * kReadPiece;
                ssize_t rc = fi_read(ep_, dst + off, std::min(kReadPiece, len - off), desc_, p.addr, raddr + off,
                                     p.key, &ctx[posted].fi);
                if (rc == -FI_EAGAIN) break;
                if (rc != 0) {
                    st = fi_error("fi_read", rc);
                    break;
                }
                ++posted;
                progress = true;
            }
            progress = drain() || progress;
            done = 0;
            for (std::size_t i = 0; i < posted; ++i) {
                if (!ctx[i].done) continue;
                ++done;
                if (ctx[i].err && st) st = error(TIERCKPT_ERR_PEER, "libfabric: read failed: {}", fi_strerror(ctx[i].err));
            }
            std::size_t before = prefix;
            while (st && prefix < posted && ctx[prefix].done) ++prefix;
            if (landed && prefix > before) landed(std::min<std::uint64_t>(prefix * kReadPiece, len));
            if (st && !progress && done < pieces) {
                if (std::chrono::steady_clock::now() > deadline) {
                    st = error(TIERCKPT_ERR_TIMEOUT, "libfabric: read of {} bytes from rank {} did not finish in {} ms",
                               len, peer, timeout_ms);
                } else {
                    struct pollfd none{};
                    ::poll(&none, 0, 1);  // yield a millisecond, never spin
                }
            }
        }
        if (done < posted) {
            // Give up what is still in flight, and wait (a little) for the
            // cancellations: the completions point into ctx.
            for (std::size_t i = 0; i < posted; ++i) {
                if (!ctx[i].done) fi_cancel(&ep_->fid, &ctx[i].fi);
            }
            auto grace = std::chrono::steady_clock::now() + std::chrono::seconds(2);
            auto pending = [&] {
                for (std::size_t i = 0; i < posted; ++i) {
                    if (!ctx[i].done) return true;
                }
                return false;
            };
            while (pending() && std::chrono::steady_clock::now() < grace) {
                if (!drain()) sched_yield();
            }
            if (pending()) abandoned_.push_back(std::move(ctx));  // late completions still land somewhere valid
        }
        return st;
    }

    bool poll(TransportMsg &m) override {
        drain();
        return inbox_.pop(m);
    }

    void wait(int wake_fd, int timeout_ms) override {
        if (!inbox_.empty()) return;
        if (cq_fd_ >= 0) {
            fid *f = &cq_->fid;
            if (fi_trywait(fabric_, &f, 1) != FI_SUCCESS) return;  // work pending: progress again
            struct pollfd fds[2] = {{cq_fd_, POLLIN, 0}, {wake_fd, POLLIN, 0}};
            ::poll(fds, wake_fd >= 0 ? 2 : 1, timeout_ms);
            return;
        }
        // The CQ is polled: sleep in short ticks so messages are seen soon.
        struct pollfd pfd = {wake_fd, POLLIN, 0};
        ::poll(&pfd, wake_fd >= 0 ? 1 : 0, std::min(timeout_ms, 5));
    }

private:
    struct Peer {
        std::uint64_t base = 0, key = 0;
        fi_addr_t addr = FI_ADDR_UNSPEC;
    };
    struct RecvSlot {
        fi_context fi;  // first: completions hand back this address
        TransportMsg msg;
    };
    struct ReadCtx {
        fi_context fi{};
        bool done = false;
        int err = 0;
    };

    // Registers [buf, buf+len) for `access`. Where the provider takes the
    // key we ask for (no FI_MR_PROV_KEY) it is random, fitted to the
    // domain's mr_key_size, and never `avoid` (a key this domain has
    // registered: keys must differ); a key taken already (FI_ENOKEY) draws
    // again. With FI_MR_PROV_KEY the requested key is ignored and
    // fi_mr_key() says the provider's.
    Status register_mr(void *buf, std::size_t len, std::uint64_t access, const std::uint64_t *avoid, fid_mr **mr,
                       const char *what) {
        const bool prov_key = (mr_mode_ & FI_MR_PROV_KEY) != 0;
        int rc = 0;
        for (int attempt = 0; attempt < 8; ++attempt) {
            std::uint64_t key = 0;
            if (!prov_key) {
                do {
                    auto r = random_u64();
                    if (!r) return error(r.status().code(), "libfabric: {}: {}", what, r.status().message());
                    key = fit_mr_key(*r, mr_key_size_);
                } while (avoid && key == *avoid);
            }
            rc = fi_mr_reg(domain_, buf, len, access, 0, key, 0, mr, nullptr);
            if (rc != -FI_ENOKEY || prov_key) break;
        }
        if (rc) return fi_error(what, rc);
        return Status::ok();
    }

    // A received message the transport refuses (see msg_check.hpp): told
    // at debug level, and now and then at warn level so a peer sending
    // nonsense cannot flood the log.
    // claimed: the rank the message names, when its bytes are whole.
    void drop(const char *why, const TransportMsg *claimed = nullptr) {
        std::string who = claimed ? fmt::format(" (naming rank {})", claimed->from) : std::string();
        drops_.report(now_ms(), fmt::format("libfabric: dropped a control message{}: {}", who, why));
    }

    Status post_recv(RecvSlot &slot) {
        for (;;) {
            ssize_t rc = fi_recv(ep_, &slot.msg, sizeof slot.msg, recv_mr_ ? fi_mr_desc(recv_mr_) : nullptr,
                                 FI_ADDR_UNSPEC, &slot.fi);
            if (rc == 0) return Status::ok();
            if (rc != -FI_EAGAIN) return fi_error("fi_recv", rc);
            drain();
        }
    }

    // Reads completions; true when there were any.
    bool drain() {
        fi_cq_msg_entry e[16];
        fi_addr_t src[16];
        bool any = false;
        for (;;) {
            ssize_t n = source_ ? fi_cq_readfrom(cq_, e, 16, src) : fi_cq_read(cq_, e, 16);
            if (n == -FI_EAGAIN || n == 0) break;
            if (n == -FI_EAVAIL) {
                fi_cq_err_entry err{};
                fi_cq_readerr(cq_, &err, 0);
                if (err.flags & FI_READ) {
                    auto *ctx = reinterpret_cast<ReadCtx *>(err.op_context);
                    ctx->err = err.err;
                    ctx->done = true;
                } else if (err.flags & FI_RECV) {
                    // A message longer than a TransportMsg is cut (FI_ETRUNC)
                    // and lands here: nothing of it is used.
                    if (err.err == FI_ETRUNC) drop("a message longer than a control message");
                    (void)post_recv(*reinterpret_cast<RecvSlot *>(err.op_context));
                }
                any = true;
                continue;
            }
            if (n < 0) break;
            any = true;
            for (ssize_t i = 0; i < n; ++i) {
                if (e[i].flags & FI_RECV) {
                    auto *slot = reinterpret_cast<RecvSlot *>(e[i].op_context);
                    accept(slot->msg, e[i].len, source_ ? src[i] : FI_ADDR_UNSPEC);
                    (void)post_recv(*slot);
                } else if (e[i].flags & FI_READ) {
                    reinterpret_cast<ReadCtx *>(e[i].op_context)->done = true;
                }
            }
        }
        return any;
    }

    // A received control message: exactly a TransportMsg (a short one
    // would leave the previous message's bytes in the slot), naming a rank
    // of the job, and with FI_SOURCE coming from that rank's address (the
    // address vector holds the job's ranks only: anyone else reads
    // FI_ADDR_NOTAVAIL). The rest is the checkpointer's to check.
    void accept(const TransportMsg &m, std::size_t len, fi_addr_t from_addr) {
        if (len != sizeof m) return drop("a message of another size than a control message");
        if (m.token != token_) return drop("not from this job (wrong token)");
        if (m.from >= peers_.size()) return drop("sender is not a rank of the job", &m);
        if (source_ && from_addr != peers_[m.from].addr) return drop("sent from another address than its rank's", &m);
        inbox_.push(m);
    }

    std::uint64_t token_ = 0;  // the job's (set_peers)
    fi_info *info_ = nullptr;
    fid_fabric *fabric_ = nullptr;
    fid_domain *domain_ = nullptr;
    fid_cq *cq_ = nullptr;
    fid_av *av_ = nullptr;
    fid_ep *ep_ = nullptr;
    fid_mr *mr_ = nullptr;
    fid_mr *recv_mr_ = nullptr;
    void *desc_ = nullptr;
    int cq_fd_ = -1;  // the completion queue's wait fd, or -1: poll in ticks
    std::uint64_t mr_mode_ = 0;
    std::size_t mr_key_size_ = 0;  // the bytes a requested key may use
    bool source_ = false;          // FI_SOURCE: completions say who sent a message
    msgcheck::DropLog drops_;
    std::vector<Peer> peers_;
    std::vector<RecvSlot> recv_;
    Inbox inbox_;
    std::vector<std::vector<ReadCtx>> abandoned_;  // reads cancelled but not yet completed
};

}  // namespace

Result<std::unique_ptr<Transport>> make_ofi_transport() { return make_initialized<OfiTransport>(); }

}  // namespace tck
