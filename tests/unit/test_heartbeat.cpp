// The heartbeat thread (replication/heartbeat.hpp): two "ranks" in one
// process, on this machine's addresses, with a short timeout.
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
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
// blob is given (its first address).
void forge(const std::vector<std::uint8_t> &blob, std::uint32_t from, std::uint64_t token, std::size_t size = 32) {
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
    int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(fd >= 0);
    (void)::sendto(fd, w, size, 0, reinterpret_cast<sockaddr *>(&to), sizeof to);
    ::close(fd);
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
    sleep_ms(700);  // each has heard the other: its address is proven
    auto t0 = std::chrono::steady_clock::now();
    p.b.reset();  // the process is gone: its socket closed, no bye
    const double ms = wait_lost(p.lost_a, t0, 4500);
    REQUIRE(p.lost_a.get() == std::vector<int>{1});
    CHECK(p.lost_a.get_gone() == std::vector<bool>{true});
    CHECK(ms >= 1000 - 50);  // never before the grace
    CHECK(ms < 2500);        // the grace, one interval to draw the answer, and slack
    p.a->stop();
}

TEST_CASE("'port unreachable' from an address the peer never sent from is not believed", "[heartbeat]") {
    auto h = Heartbeat::open();
    REQUIRE(h);
    // Rank 1's blob names this machine's addresses and a port nothing holds
    // (bound, then closed): every heartbeat to it draws "port unreachable",
    // but rank 1 never sent a heartbeat from there.
    int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in any{};
    any.sin_family = AF_INET;
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr *>(&any), sizeof any) == 0);
    socklen_t len = sizeof any;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr *>(&any), &len) == 0);
    ::close(fd);
    auto blob1 = (*h)->local_blob();
    std::memcpy(blob1.data(), &any.sin_port, 2);
    Lost lost;
    const int timeout = 1500;  // grace 1 s: a believed answer would come at about 1.1 s
    REQUIRE((*h)->start(0, {(*h)->local_blob(), blob1}, {1}, timeout, kToken,
                        [&](int q, double, bool g) { lost.add(q, g); }));
    auto t0 = std::chrono::steady_clock::now();
    const double ms = wait_lost(lost, t0, 4000);
    REQUIRE(lost.get() == std::vector<int>{1});
    CHECK(lost.get_gone() == std::vector<bool>{false});  // found by its silence
    CHECK(ms >= timeout - 100);
    (*h)->stop();
}

namespace {

enum class End { exit, crash, crash_after_fork };

// A "rank" in a child process: opens its heartbeat, trades blobs with the
// parent over pipes, watches it, and after 600 ms ends by exit() (the exit
// hook says bye) or by _exit() (a crash: no bye); crash_after_fork: it first
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
        pid_t pid = ::fork();
        if (pid == 0) std::exit(0);
        int ws = 0;
        if (pid < 0 || ::waitpid(pid, &ws, 0) != pid) ::_exit(7);
    }
    sleep_ms(600);
    if (end == End::exit) std::exit(0);
    ::_exit(0);
}

// The parent's side: rank 0 watching the child. Returns the child's exit
// status; `lost` gets the reports within `watch_ms` of the child's end.
int parent_rank(End end, Lost &lost, int watch_ms) {
    int up[2], down[2];
    REQUIRE(::pipe(up) == 0);
    REQUIRE(::pipe(down) == 0);
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
    Lost crashed;
    CHECK(parent_rank(End::crash, crashed, 2500) == 0);
    CHECK(crashed.get() == std::vector<int>{1});
    CHECK(crashed.get_gone() == std::vector<bool>{true});
    // The rank's own child exited first: no bye was said for the rank.
    Lost forked;
    CHECK(parent_rank(End::crash_after_fork, forked, 2500) == 0);
    CHECK(forked.get() == std::vector<int>{1});
}

TEST_CASE("start refuses a timeout of zero", "[heartbeat]") {
    auto h = Heartbeat::open();
    REQUIRE(h);
    CHECK_FALSE((*h)->start(0, {{}, {}}, {1}, 0, kToken, nullptr));
}
