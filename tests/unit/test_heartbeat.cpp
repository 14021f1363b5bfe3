// The heartbeat thread (replication/heartbeat.hpp): two "ranks" in one
// process, on this machine's addresses, with a short timeout.
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "lib/replication/heartbeat.hpp"

using tck::Heartbeat;

namespace {

struct Lost {
    std::mutex mu;
    std::vector<int> peers;
    std::vector<bool> gone;
    void add(int p, bool g = false) {
        std::lock_guard<std::mutex> lk(mu);
        peers.push_back(p);
        gone.push_back(g);
    }
    std::vector<bool> get_gone() {
        std::lock_guard<std::mutex> lk(mu);
        return gone;
    }
    std::vector<int> get() {
        std::lock_guard<std::mutex> lk(mu);
        return peers;
    }
};

constexpr std::uint64_t kToken = 0x1234567890abcdefull;
constexpr int kTimeoutMs = 600;  // interval 60 ms

struct Pair {
    std::unique_ptr<Heartbeat> a, b;
    Lost lost_a, lost_b;
    std::vector<std::vector<std::uint8_t>> blobs;
    explicit Pair(int timeout_ms = kTimeoutMs) {
        auto ha = Heartbeat::open();
        auto hb = Heartbeat::open();
        REQUIRE(ha);
        REQUIRE(hb);
        a = std::move(*ha);
        b = std::move(*hb);
        blobs = {a->local_blob(), b->local_blob()};
        REQUIRE(blobs[0].size() >= 6);  // a port and at least one address
        REQUIRE(a->start(0, blobs, {1}, timeout_ms, kToken, [this](int p, double, bool g) { lost_a.add(p, g); }));
        REQUIRE(b->start(1, blobs, {0}, timeout_ms, kToken, [this](int p, double, bool g) { lost_b.add(p, g); }));
    }
};

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

double ms_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// Waits up to `limit_ms` for a report; returns how long it took.
double wait_lost(Lost &lost, std::chrono::steady_clock::time_point t0, int limit_ms) {
    while (lost.get().empty() && ms_since(t0) < limit_ms) sleep_ms(10);
    return ms_since(t0);
}

// A datagram shaped like a heartbeat from `from`, sent to the rank whose
// blob is given (its first address), from `fd` (a socket of its own when
// none is given).
void forge(const std::vector<std::uint8_t> &blob, std::uint32_t from, std::uint64_t token, std::size_t size = 32,
           int fd = -1) {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    std::memcpy(&to.sin_port, blob.data(), 2);
    std::memcpy(&to.sin_addr.s_addr, blob.data() + 2, 4);
    unsigned char w[64] = {};
    const std::uint32_t magic = 0x54434b48;
    const std::uint16_t version = 1, type = 1;
    std::memcpy(w, &magic, 4);
    std::memcpy(w + 4, &version, 2);
    std::memcpy(w + 6, &type, 2);
    std::memcpy(w + 8, &from, 4);
    std::memcpy(w + 16, &token, 8);
    const bool own = fd < 0;
    if (own) fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(fd >= 0);
    (void)::sendto(fd, w, size, 0, reinterpret_cast<sockaddr *>(&to), sizeof to);
    if (own) ::close(fd);
}

}  // namespace

TEST_CASE("two live ranks never report each other, however long they run", "[heartbeat]") {
    Pair p;
    sleep_ms(5 * kTimeoutMs);
    CHECK(p.lost_a.get().empty());
    CHECK(p.lost_b.get().empty());
    // The heartbeats came every interval: no silence near the timeout.
    CHECK(p.a->longest_silence_ms() > 0.0);
    CHECK(p.a->longest_silence_ms() < kTimeoutMs / 2.0);
    p.a->stop();
    p.b->stop();
}

TEST_CASE("a rank that vanishes is reported once, within the timeout and an interval", "[heartbeat]") {
    Pair p;
    sleep_ms(200);
    auto t0 = std::chrono::steady_clock::now();
    p.b->stop(false);  // gone without a word, as a dead node
    while (p.lost_a.get().empty() && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5)) sleep_ms(10);
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    REQUIRE(p.lost_a.get() == std::vector<int>{1});
    CHECK(ms >= kTimeoutMs - 100);  // its last beat may have left up to one interval before the stop
    sleep_ms(3 * kTimeoutMs);
    CHECK(p.lost_a.get() == std::vector<int>{1});  // judged once
    p.a->stop();
}

TEST_CASE("a rank that says goodbye is not reported", "[heartbeat]") {
    Pair p;
    sleep_ms(200);
    p.b->stop(true);
    sleep_ms(3 * kTimeoutMs);
    CHECK(p.lost_a.get().empty());
    p.a->stop();
}

TEST_CASE("forged heartbeats keep no dead rank alive", "[heartbeat]") {
    Pair p;
    sleep_ms(200);
    p.b->stop(false);
    auto t0 = std::chrono::steady_clock::now();
    // Datagrams naming rank 1, without the job's token, of the wrong size,
    // or naming a rank that is not watched: all dropped.
    while (p.lost_a.get().empty() && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5)) {
        forge(p.blobs[0], 1, kToken ^ 1);
        forge(p.blobs[0], 1, kToken, 31);
        forge(p.blobs[0], 1, kToken, 40);
        forge(p.blobs[0], 7, kToken);
        sleep_ms(20);
    }
    CHECK(p.lost_a.get() == std::vector<int>{1});
    p.a->stop();
}

TEST_CASE("a heartbeat with the token counts, and a blob without addresses leaves the peer to the transport",
          "[heartbeat]") {
    auto h = Heartbeat::open();
    REQUIRE(h);
    Lost lost;
    std::vector<std::vector<std::uint8_t>> blobs = {(*h)->local_blob(), {}};
    REQUIRE((*h)->start(0, blobs, {1}, kTimeoutMs, kToken, [&](int q, double, bool) { lost.add(q); }));
    // Rank 1 has no address: only its forged-but-correct datagrams (as the
    // transport's heartbeats would, through heard()) keep it alive.
    auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(3 * kTimeoutMs)) {
        forge(blobs[0], 1, kToken);
        sleep_ms(50);
    }
    CHECK(lost.get().empty());
    for (int i = 0; i < 30; ++i) {
        (*h)->heard(1);
        sleep_ms(50);
    }
    CHECK(lost.get().empty());
    sleep_ms(2 * kTimeoutMs);
    CHECK(lost.get() == std::vector<int>{1});
    (*h)->stop();
}

TEST_CASE("a rank whose socket closes without a word is reported after the grace, long before the timeout",
          "[heartbeat]") {
    Pair p(5000);  // interval 500 ms, grace 1 s
    // Each has heard the other (its address is proven) once a silence ended.
    for (int i = 0; i < 500 && p.a->longest_silence_ms() == 0.0; ++i) sleep_ms(10);
    REQUIRE(p.a->longest_silence_ms() > 0.0);
    auto t0 = std::chrono::steady_clock::now();
    p.b.reset();  // the process is gone: its socket closed, no bye
    const double ms = wait_lost(p.lost_a, t0, 4900);
    REQUIRE(p.lost_a.get() == std::vector<int>{1});
    CHECK(p.lost_a.get_gone() == std::vector<bool>{true});  // not the 5 s timeout
    CHECK(ms >= 1000 - 50);  // never before the grace
    p.a->stop();
}

namespace {

// A rank played by hand: a UDP socket bound to `ip`, sending heartbeats with
// the token as rank `from` to `to`'s first address.
struct FakeRank {
    int fd = -1;
    sockaddr_in self{};
    explicit FakeRank(const char *ip) {
        fd = ::socket(AF_INET, SOCK_DGRAM, 0);
        REQUIRE(fd >= 0);
        self.sin_family = AF_INET;
        REQUIRE(::inet_pton(AF_INET, ip, &self.sin_addr) == 1);
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr *>(&self), sizeof self) == 0);
        socklen_t len = sizeof self;
        REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr *>(&self), &len) == 0);
    }
    ~FakeRank() { close(); }
    void close() {
        if (fd >= 0) ::close(fd);
        fd = -1;
    }
    // Its blob: its port, then the given addresses.
    std::vector<std::uint8_t> blob(const std::vector<const char *> &ips) const {
        std::vector<std::uint8_t> b(2);
        std::memcpy(b.data(), &self.sin_port, 2);
        for (const char *ip : ips) {
            in_addr a{};
            REQUIRE(::inet_pton(AF_INET, ip, &a) == 1);
            const auto *p = reinterpret_cast<const std::uint8_t *>(&a.s_addr);
            b.insert(b.end(), p, p + 4);
        }
        return b;
    }
    // Heartbeats received from rank `from` since the last call.
    int received(std::uint32_t from) {
        int n = 0;
        unsigned char w[64];
        for (;;) {
            ssize_t k = ::recv(fd, w, sizeof w, MSG_DONTWAIT);
            if (k < 0) return n;
            std::uint32_t f = 0;
            std::memcpy(&f, w + 8, 4);
            if (k == 32 && f == from) ++n;
        }
    }
    void beat(const std::vector<std::uint8_t> &to, std::uint32_t from) { forge(to, from, kToken, 32, fd); }
};

// Rank 0, a real heartbeat, watching rank 1, a FakeRank on 127.0.0.1 whose
// blob lists `ips` with its port.
struct WatchedFake {
    std::unique_ptr<Heartbeat> h;
    FakeRank fake{"127.0.0.1"};
    std::vector<std::uint8_t> mine;
    Lost lost;
    WatchedFake(int timeout_ms, const std::vector<const char *> &ips) {
        auto opened = Heartbeat::open();
        REQUIRE(opened);
        h = std::move(*opened);
        mine = h->local_blob();
        REQUIRE(h->start(0, {mine, fake.blob(ips)}, {1}, timeout_ms, kToken,
                         [this](int q, double, bool g) { lost.add(q, g); }));
    }
    ~WatchedFake() { h->stop(); }
};

}  // namespace

TEST_CASE("'port unreachable' counts only from an address the peer's heartbeats came from", "[heartbeat]") {
    // Rank 1 publishes 127.0.0.1 and 127.0.0.2 but sends from 127.0.0.1
    // only: 127.0.0.2 stands for an address every node has (a container
    // bridge), where nothing holds its port, and answers "unreachable" to
    // every heartbeat rank 0 sends there.
    const int timeout = 2500;  // grace 1 s, interval 250 ms
    WatchedFake w(timeout, {"127.0.0.1", "127.0.0.2"});
    auto t0 = std::chrono::steady_clock::now();
    while (ms_since(t0) < 2 * timeout) {  // alive, as long as it beats
        w.fake.beat(w.mine, 1);
        sleep_ms(100);
    }
    CHECK(w.lost.get().empty());
    // It falls silent, its socket still open: found by the timeout alone.
    t0 = std::chrono::steady_clock::now();
    double ms = wait_lost(w.lost, t0, 3 * timeout);
    REQUIRE(w.lost.get() == std::vector<int>{1});
    CHECK(w.lost.get_gone() == std::vector<bool>{false});
    CHECK(ms >= timeout - 300);
}

TEST_CASE("'port unreachable' from the peer's proven address is believed after the grace", "[heartbeat]") {
    const int timeout = 6000;  // interval 500 ms, grace 1 s
    WatchedFake w(timeout, {"127.0.0.2", "127.0.0.1"});
    (void)w.fake.received(0);
    for (int i = 0; i < 20; ++i) {
        w.fake.beat(w.mine, 1);
        sleep_ms(100);
    }
    // 127.0.0.2 answered every heartbeat sent there, and the answer fails
    // the socket's next send unless it is sent again: rank 1's own address,
    // listed after it, still got one every interval (about 4 in 2 s).
    CHECK(w.fake.received(0) >= 2);
    auto t0 = std::chrono::steady_clock::now();
    w.fake.close();  // 127.0.0.1 now answers for its port
    const double ms = wait_lost(w.lost, t0, timeout - 500);
    REQUIRE(w.lost.get() == std::vector<int>{1});
    CHECK(w.lost.get_gone() == std::vector<bool>{true});
    CHECK(ms >= 1000 - 50);
}

namespace {

enum class End { exit, exit_error, crash, crash_after_fork };

// A "rank" in a child process: opens its heartbeat, trades blobs with the
// parent over pipes, watches it, and after 600 ms ends by exit(0) (the exit
// hook says bye), exit(1) (a failure: no bye) or by _exit() (a crash: no
// bye); crash_after_fork: it first
// forks a child of its own that calls exit() (whose hook must not say bye
// for the rank).
void child_rank(int to_parent, int from_parent, End end) {
    auto h = Heartbeat::open();
    if (!h) ::_exit(2);
    auto mine = (*h)->local_blob();
    std::uint32_t n = static_cast<std::uint32_t>(mine.size());
    if (::write(to_parent, &n, 4) != 4 || ::write(to_parent, mine.data(), n) != static_cast<ssize_t>(n)) ::_exit(3);
    std::vector<std::uint8_t> theirs(64);
    ssize_t got = ::read(from_parent, theirs.data(), theirs.size());
    if (got < 6) ::_exit(4);
    theirs.resize(static_cast<std::size_t>(got));
    if (!(*h)->start(1, {theirs, mine}, {0}, 5000, kToken, [](int, double, bool) { ::_exit(5); })) ::_exit(6);
    if (end == End::crash_after_fork) {
        std::fflush(nullptr);
        pid_t pid = ::fork();
        if (pid == 0) std::exit(0);
        int ws = 0;
        if (pid < 0 || ::waitpid(pid, &ws, 0) != pid) ::_exit(7);
    }
    sleep_ms(600);
    if (end == End::exit) std::exit(0);
    if (end == End::exit_error) std::exit(1);
    ::_exit(0);
}

// The parent's side: rank 0 watching the child. Returns the child's exit
// status; `lost` gets the reports within `watch_ms` of the child's end.
int parent_rank(End end, Lost &lost, int watch_ms) {
    int up[2], down[2];
    REQUIRE(::pipe(up) == 0);
    REQUIRE(::pipe(down) == 0);
    std::fflush(nullptr);  // the child's exit() flushes its copy of the buffers
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) child_rank(up[1], down[0], end);
    ::close(up[1]);
    ::close(down[0]);
    auto h = Heartbeat::open();
    REQUIRE(h);
    std::uint32_t n = 0;
    REQUIRE(::read(up[0], &n, 4) == 4);
    REQUIRE(n <= 64);
    std::vector<std::uint8_t> child(n);
    REQUIRE(::read(up[0], child.data(), n) == static_cast<ssize_t>(n));
    auto mine = (*h)->local_blob();
    REQUIRE(::write(down[1], mine.data(), mine.size()) == static_cast<ssize_t>(mine.size()));
    REQUIRE((*h)->start(0, {mine, child}, {1}, 5000, kToken, [&](int q, double, bool g) { lost.add(q, g); }));
    int ws = 0;
    REQUIRE(::waitpid(pid, &ws, 0) == pid);
    wait_lost(lost, std::chrono::steady_clock::now(), watch_ms);
    (*h)->stop();
    ::close(up[0]);
    ::close(down[1]);
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
}

}  // namespace

TEST_CASE("a process that exits without closing says bye; one that dies does not", "[heartbeat]") {
    Lost clean;
    CHECK(parent_rank(End::exit, clean, 2500) == 0);
    CHECK(clean.get().empty());  // the exit hook's bye: not taken for dead
    // The reports come about 1.7 s after the end (the grace, then the
    // probe's "port unreachable"); waited for up to 4.5 s, under the 5 s
    // timeout, as this machine kind pauses for seconds now and then (a 2.5 s
    // wait once failed in make check, not reproduced in 8 runs under load).
    Lost failed;  // exit(1): a failure its peers must see, no bye
    CHECK(parent_rank(End::exit_error, failed, 4500) == 1);
    CHECK(failed.get() == std::vector<int>{1});
    CHECK(failed.get_gone() == std::vector<bool>{true});
    Lost crashed;
    CHECK(parent_rank(End::crash, crashed, 4500) == 0);
    CHECK(crashed.get() == std::vector<int>{1});
    CHECK(crashed.get_gone() == std::vector<bool>{true});
    // The rank's own child exited first: no bye was said for the rank.
    Lost forked;
    CHECK(parent_rank(End::crash_after_fork, forked, 4500) == 0);
    CHECK(forked.get() == std::vector<int>{1});
}

TEST_CASE("start refuses a timeout of zero", "[heartbeat]") {
    auto h = Heartbeat::open();
    REQUIRE(h);
    CHECK_FALSE((*h)->start(0, {{}, {}}, {1}, 0, kToken, nullptr));
}
