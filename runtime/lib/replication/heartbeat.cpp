#include "heartbeat.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <linux/errqueue.h>
#include <net/if.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/clock.hpp"
#include "common/log.hpp"

namespace tck {

namespace {

constexpr std::uint32_t kMagic = 0x54434b48;  // "TCKH"
constexpr std::uint16_t kWireVersion = 1;
constexpr std::uint16_t kBeat = 1, kBye = 2;
// Lateness of the thread's own wake-up below this is scheduling noise.
constexpr double kLateMs = 20;
// The most datagrams or queued errors read in one round: a flood (another
// user's) cannot keep the thread from judging.
constexpr int kMaxReadsPerRound = 256;

// How many times a goodbye is sent: a datagram may be lost, and a peer
// that misses it takes the rank for dead once its port is closed.
constexpr int kByeCopies = 3;

// Every started heartbeat, for the goodbye at process exit. Never
// destroyed: the exit hook may run after other static objects are gone.
struct Live {
    std::mutex mu;
    std::vector<Heartbeat *> all;
};
Live &live() {
    static Live *l = new Live();
    return *l;
}
// The process that started the newest heartbeat: a child forked without
// exec inherits the hook (and maybe a locked mutex) and must do nothing,
// unless it started heartbeats of its own.
std::atomic<pid_t> g_hook_owner{0};
// exit(status): a goodbye for status 0 only. A rank that exits with an
// error (exit(1), Fortran's ERROR STOP) is a failure its peers must see;
// after a goodbye they would stop watching it and wait in MPI instead.
void say_bye_at_exit(int status, void *) {
    if (status != 0 || ::getpid() != g_hook_owner.load()) return;
    Live &l = live();
    std::lock_guard<std::mutex> lk(l.mu);
    for (Heartbeat *h : l.all) h->exiting();
}
void add_live(Heartbeat *h) {
    static const bool hooked = ::on_exit(say_bye_at_exit, nullptr) == 0;  // inherited by a fork
    g_hook_owner = ::getpid();
    if (!hooked) log::debug("heartbeat: no exit hook: a process that exits without closing is taken for dead");
    Live &l = live();
    std::lock_guard<std::mutex> lk(l.mu);
    l.all.push_back(h);
}
void remove_live(Heartbeat *h) {
    Live &l = live();
    std::lock_guard<std::mutex> lk(l.mu);
    l.all.erase(std::remove(l.all.begin(), l.all.end(), h), l.all.end());
}

// One datagram, fixed size, host byte order (every rank of a job runs the
// same build on the same kind of machine; a datagram from anything else
// fails the token check).
struct Wire {
    std::uint32_t magic;
    std::uint16_t version;
    std::uint16_t type;
    std::uint32_t from;
    std::uint32_t reserved;
    std::uint64_t token;
    std::uint64_t seq;
};
static_assert(sizeof(Wire) == 32, "the heartbeat datagram is 32 bytes");

// The blob: port (2 bytes, network order), then IPv4 addresses (4 bytes
// each, network order).
std::vector<std::uint32_t> node_addresses() {
    std::vector<std::uint32_t> out, loopback;
    struct ifaddrs *list = nullptr;
    if (::getifaddrs(&list) != 0) return out;
    for (struct ifaddrs *i = list; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !(i->ifa_flags & IFF_UP)) continue;
        std::uint32_t a = reinterpret_cast<const sockaddr_in *>(i->ifa_addr)->sin_addr.s_addr;
        const std::uint32_t host = ntohl(a);
        if ((host >> 16) == 0xa9fe) continue;  // 169.254/16: link-local, not routed between nodes
        auto &into = (i->ifa_flags & IFF_LOOPBACK) ? loopback : out;
        if (std::find(into.begin(), into.end(), a) == into.end()) into.push_back(a);
    }
    ::freeifaddrs(list);
    if (out.empty()) out = loopback;  // a machine alone: its peers can only be on it
    if (out.size() > Heartbeat::kMaxAddrs) out.resize(Heartbeat::kMaxAddrs);
    return out;
}

std::vector<sockaddr_in> parse_blob(const std::vector<std::uint8_t> &b) {
    std::vector<sockaddr_in> out;
    if (b.size() < 2 || (b.size() - 2) % 4 != 0) return out;
    std::uint16_t port = 0;
    std::memcpy(&port, b.data(), 2);
    if (port == 0) return out;
    for (std::size_t off = 2; off + 4 <= b.size() && out.size() < Heartbeat::kMaxAddrs; off += 4) {
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = port;
        std::memcpy(&sa.sin_addr.s_addr, b.data() + off, 4);
        out.push_back(sa);
    }
    return out;
}

}  // namespace

Result<std::unique_ptr<Heartbeat>> Heartbeat::open() {
    std::unique_ptr<Heartbeat> h(new Heartbeat());
    h->fd_.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!h->fd_) return error(TIERCKPT_ERR_IO, "heartbeat socket: {}", std::strerror(errno));
    sockaddr_in any{};
    any.sin_family = AF_INET;
    any.sin_addr.s_addr = htonl(INADDR_ANY);
    any.sin_port = 0;
    if (::bind(h->fd_.get(), reinterpret_cast<sockaddr *>(&any), sizeof any) != 0) {
        return error(TIERCKPT_ERR_IO, "heartbeat socket: bind: {}", std::strerror(errno));
    }
    socklen_t len = sizeof any;
    if (::getsockname(h->fd_.get(), reinterpret_cast<sockaddr *>(&any), &len) != 0) {
        return error(TIERCKPT_ERR_IO, "heartbeat socket: getsockname: {}", std::strerror(errno));
    }
    h->port_ = any.sin_port;
    // ICMP errors (a peer's port unreachable) queued for us to read. Without
    // it the fast path is lost, not liveness.
    const int on = 1;
    if (::setsockopt(h->fd_.get(), IPPROTO_IP, IP_RECVERR, &on, sizeof on) != 0) {
        log::debug("heartbeat socket: IP_RECVERR: {}: a dead process is found by its silence only", std::strerror(errno));
    }
    h->wake_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!h->wake_fd_) return error(TIERCKPT_ERR_IO, "eventfd: {}", std::strerror(errno));
    return h;
}

Heartbeat::~Heartbeat() { stop(false); }

std::vector<std::uint8_t> Heartbeat::local_blob() const {
    std::vector<std::uint8_t> b(2);
    std::memcpy(b.data(), &port_, 2);
    for (std::uint32_t a : node_addresses()) {
        const auto *p = reinterpret_cast<const std::uint8_t *>(&a);
        b.insert(b.end(), p, p + 4);
    }
    return b;
}

Status Heartbeat::start(int self, const std::vector<std::vector<std::uint8_t>> &blobs, std::vector<int> watched,
                        int timeout_ms, std::uint64_t token, LostFn lost) {
    if (timeout_ms <= 0) return error(TIERCKPT_ERR_INVALID, "heartbeat timeout {} ms: must be positive", timeout_ms);
    self_ = self;
    token_ = token;
    timeout_ms_ = timeout_ms;
    lost_ = std::move(lost);
    proven_.assign(watched.size(), {});
    for (int p : watched) {
        auto a = (p >= 0 && static_cast<std::size_t>(p) < blobs.size()) ? parse_blob(blobs[static_cast<std::size_t>(p)])
                                                                        : std::vector<sockaddr_in>{};
        if (a.empty()) log::info("rank {}: no heartbeat address for peer rank {}: it is watched over the transport only", self, p);
        addrs_.push_back(std::move(a));
    }
    watch_ = std::make_unique<PeerWatch>(std::move(watched), now_ms(), timeout_ms);
    thread_ = std::thread([this] { loop(); });
    pid_ = ::getpid();
    add_live(this);
    return Status::ok();
}

void Heartbeat::exiting() {
    // A child forked by the application inherits the hook and this object,
    // not the thread: its exit must not say bye for the rank.
    if (::getpid() != pid_) return;
    if (stop_.exchange(true)) return;
    say_bye();
    std::uint64_t one = 1;
    (void)!::write(wake_fd_.get(), &one, sizeof one);
}

int Heartbeat::watched_index(int peer) const {
    const auto &peers = watch_->peers();  // fixed at start(): read without the lock
    auto it = std::find(peers.begin(), peers.end(), peer);
    return it == peers.end() ? -1 : static_cast<int>(it - peers.begin());
}

void Heartbeat::say_bye() {
    for (int i = 0; i < kByeCopies; ++i) send_all(kBye);
}

void Heartbeat::heard(int peer) {
    std::lock_guard<std::mutex> lk(mu_);
    if (watch_) longest_ = std::max(longest_, watch_->heard(peer, now_ms()));
}

void Heartbeat::left(int peer) {
    std::lock_guard<std::mutex> lk(mu_);
    if (watch_) watch_->left(peer);
}

double Heartbeat::longest_silence_ms() const {
    std::lock_guard<std::mutex> lk(mu_);
    return longest_;
}

void Heartbeat::stop(bool say_goodbye) {
    remove_live(this);
    if (!thread_.joinable()) return;
    const bool told = stop_.exchange(true);  // the exit hook said bye already
    std::uint64_t one = 1;
    (void)!::write(wake_fd_.get(), &one, sizeof one);
    thread_.join();
    if (say_goodbye && !told) say_bye();
}

void Heartbeat::send_all(std::uint16_t type) {
    Wire w{};
    w.magic = kMagic;
    w.version = kWireVersion;
    w.type = type;
    w.from = static_cast<std::uint32_t>(self_);
    w.token = token_;
    w.seq = ++seq_;
    for (const auto &peer : addrs_) {
        for (const auto &sa : peer) {
            // Best effort: a full buffer or an unreachable address is
            // silence, which is what the peer judges. But an ICMP answer to
            // an earlier datagram (IP_RECVERR) leaves an error pending on the
            // socket, and the next send fails with it, unsent: send again,
            // or one peer's dead address would silence the others.
            for (int tries = 0; tries < 4; ++tries) {
                if (::sendto(fd_.get(), &w, sizeof w, MSG_DONTWAIT, reinterpret_cast<const sockaddr *>(&sa), sizeof sa) >=
                        0 ||
                    (errno != ECONNREFUSED && errno != EHOSTUNREACH && errno != ENETUNREACH && errno != EHOSTDOWN &&
                     errno != EINTR)) {
                    break;
                }
            }
        }
    }
}

// Reads every datagram waiting; only well-formed ones of this job count, and
// PeerWatch ignores ranks it does not watch.
void Heartbeat::drain() {
    for (int reads = 0; reads < kMaxReadsPerRound; ++reads) {
        Wire w{};
        sockaddr_in src{};
        socklen_t srclen = sizeof src;
        ssize_t n = ::recvfrom(fd_.get(), &w, sizeof w, MSG_DONTWAIT | MSG_TRUNC, reinterpret_cast<sockaddr *>(&src),
                               &srclen);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            continue;  // EINTR, or the error an ICMP answer left (read from the error queue)
        }
        if (n != static_cast<ssize_t>(sizeof w) || w.magic != kMagic || w.version != kWireVersion ||
            w.token != token_ || (w.type != kBeat && w.type != kBye)) {
            continue;
        }
        if (w.from > 0x7fffffffu) continue;
        const int from = static_cast<int>(w.from);
        const int i = watched_index(from);
        if (i >= 0 && srclen == sizeof src && src.sin_family == AF_INET) {
            auto &seen = proven_[static_cast<std::size_t>(i)];
            if (std::find(seen.begin(), seen.end(), src.sin_addr.s_addr) == seen.end() && seen.size() < kMaxAddrs) {
                seen.push_back(src.sin_addr.s_addr);
            }
        }
        if (w.type == kBye) left(from);
        else heard(from);
    }
}

// Reads the ICMP errors our heartbeats drew. A "port unreachable" for a
// watched peer's port, from an address its heartbeats came from, says its
// socket is closed: PeerWatch::unreachable. Anything else (a host or net
// unreachable, an address the peer never sent from) is left to the timeout.
void Heartbeat::drain_errors(double now) {
    for (int reads = 0; reads < kMaxReadsPerRound; ++reads) {
        Wire w{};
        sockaddr_in dst{};
        alignas(cmsghdr) unsigned char control[256];
        iovec iov{&w, sizeof w};
        msghdr msg{};
        msg.msg_name = &dst;
        msg.msg_namelen = sizeof dst;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        const ssize_t n = ::recvmsg(fd_.get(), &msg, MSG_ERRQUEUE | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) continue;
            return;  // EAGAIN: no more
        }
        const sock_extended_err *ee = nullptr;
        for (cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR &&
                c->cmsg_len >= CMSG_LEN(sizeof(sock_extended_err) + sizeof(sockaddr_in))) {
                ee = reinterpret_cast<const sock_extended_err *>(CMSG_DATA(c));
            }
        }
        if (!ee || (msg.msg_flags & MSG_CTRUNC) || ee->ee_origin != SO_EE_ORIGIN_ICMP ||
            ee->ee_type != ICMP_DEST_UNREACH || ee->ee_code != ICMP_PORT_UNREACH || msg.msg_namelen != sizeof dst ||
            dst.sin_family != AF_INET) {
            continue;
        }
        // The answer quotes one of this rank's own heartbeats (the kernel
        // hands back the datagram it refers to), and comes from the very
        // address it was sent to: a router's or firewall's answer, or one
        // made up around a datagram this rank never sent, is not the peer's
        // node speaking.
        sockaddr_in offender{};
        std::memcpy(&offender, SO_EE_OFFENDER(ee), sizeof offender);
        if (n != static_cast<ssize_t>(sizeof w) || w.magic != kMagic || w.token != token_ ||
            w.from != static_cast<std::uint32_t>(self_) || offender.sin_family != AF_INET ||
            offender.sin_addr.s_addr != dst.sin_addr.s_addr) {
            continue;
        }
        for (std::size_t i = 0; i < addrs_.size(); ++i) {
            const bool published = std::any_of(addrs_[i].begin(), addrs_[i].end(), [&](const sockaddr_in &a) {
                return a.sin_addr.s_addr == dst.sin_addr.s_addr && a.sin_port == dst.sin_port;
            });
            const auto &seen = proven_[i];
            if (!published || std::find(seen.begin(), seen.end(), dst.sin_addr.s_addr) == seen.end()) continue;
            std::lock_guard<std::mutex> lk(mu_);
            watch_->unreachable(watch_->peers()[i], now);
        }
    }
}

void Heartbeat::loop() {
    const int interval = watch_->interval_ms();
    double next_beat = 0;
    while (!stop_) {
        double now = now_ms();
        if (now >= next_beat) {
            send_all(kBeat);
            next_beat = now + interval;
        }
        struct pollfd pfd[2] = {{fd_.get(), POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}};
        int wait = static_cast<int>(std::max(1.0, next_beat - now_ms()));
        (void)::poll(pfd, 2, wait);
        if (stop_) break;
        // What came in first, then the verdict: a pause of this process
        // (scheduling, paging) leaves the peers' datagrams queued, and they
        // count before silence is judged.
        drain();
        drain_errors(now_ms());
        // This round took longer than the wait it asked for: this thread,
        // and likely the whole node, did not run meanwhile; the peers'
        // silence excludes that time.
        const double after = now_ms();
        const double late = after - now - wait;
        if (late > kLateMs) {
            std::lock_guard<std::mutex> lk(mu_);
            watch_->paused(late, after);
        }
        std::optional<PeerWatch::Silence> s;
        {
            std::lock_guard<std::mutex> lk(mu_);
            s = watch_->silent(now_ms());
            if (s) watch_->left(s->peer);  // judged once
        }
        if (s && lost_ && !stop_) lost_(s->peer, s->silent_ms, s->gone);
    }
}

}  // namespace tck
