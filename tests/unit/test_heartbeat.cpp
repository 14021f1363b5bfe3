// The heartbeat thread (replication/heartbeat.hpp): two "ranks" in one
// process, on this machine's addresses, with a short timeout.
#include <arpa/inet.h>
#include <sys/socket.h>
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
    void add(int p) {
        std::lock_guard<std::mutex> lk(mu);
        peers.push_back(p);
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
    Pair() {
        auto ha = Heartbeat::open();
        auto hb = Heartbeat::open();
        REQUIRE(ha);
        REQUIRE(hb);
        a = std::move(*ha);
        b = std::move(*hb);
        blobs = {a->local_blob(), b->local_blob()};
        REQUIRE(blobs[0].size() >= 6);  // a port and at least one address
        REQUIRE(a->start(0, blobs, {1}, kTimeoutMs, kToken, [this](int p, double) { lost_a.add(p); }));
        REQUIRE(b->start(1, blobs, {0}, kTimeoutMs, kToken, [this](int p, double) { lost_b.add(p); }));
    }
};

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

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
    REQUIRE((*h)->start(0, blobs, {1}, kTimeoutMs, kToken, [&](int q, double) { lost.add(q); }));
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

TEST_CASE("start refuses a timeout of zero", "[heartbeat]") {
    auto h = Heartbeat::open();
    REQUIRE(h);
    CHECK_FALSE((*h)->start(0, {{}, {}}, {1}, 0, kToken, nullptr));
}
