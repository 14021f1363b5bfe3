#include <catch2/catch.hpp>

#include "lib/replication/peer_watch.hpp"

using tck::PeerWatch;

TEST_CASE("a peer heard within the timeout is alive; one silent past it is reported", "[peer_watch]") {
    PeerWatch w({3, 5}, 1000.0, 2000);
    CHECK_FALSE(w.silent(2900.0));
    CHECK(w.heard(3, 2500.0) == Approx(1500.0));  // the silence it ends
    auto s = w.silent(3100.0);  // 5 silent for 2100 ms, 3 for 600 ms
    REQUIRE(s);
    CHECK(s->peer == 5);
    CHECK(s->silent_ms == Approx(2100.0));
    w.heard(5, 3100.0);
    CHECK_FALSE(w.silent(3200.0));
}

TEST_CASE("a peer that left on purpose is never reported; strangers are ignored", "[peer_watch]") {
    PeerWatch w({1}, 0.0, 100);
    CHECK(w.heard(7, 500.0) == 0.0);  // not watched
    REQUIRE(w.silent(500.0));
    w.left(1);
    CHECK_FALSE(w.silent(10000.0));
}

TEST_CASE("heartbeats go out once per interval", "[peer_watch]") {
    PeerWatch w({1}, 0.0, 10000);
    CHECK(w.interval_ms() == 500);  // never rarer than every 500 ms
    CHECK(w.heartbeat_due(0.0));
    CHECK_FALSE(w.heartbeat_due(499.0));
    CHECK(w.heartbeat_due(500.0));
    CHECK(PeerWatch({1}, 0.0, 3000).interval_ms() == 300);  // a tenth of the timeout
    PeerWatch fast({1}, 0.0, 100);
    CHECK(fast.interval_ms() == 50);  // never busier than every 50 ms
}

TEST_CASE("an old message does not move a peer's last sign of life back", "[peer_watch]") {
    PeerWatch w({2}, 0.0, 1000);
    w.heard(2, 900.0);
    CHECK(w.heard(2, 100.0) == 0.0);
    CHECK_FALSE(w.silent(1800.0));
    CHECK(w.silent(1950.0));
}

TEST_CASE("the watcher's own pause does not count as the peers' silence", "[peer_watch]") {
    tck::PeerWatch w({1, 2}, 0, 3000);
    w.heard(1, 100);
    w.heard(2, 100);
    // The node stopped from 200 ms to 3500 ms (a 3.3 s pause): nobody sent,
    // nobody listened. Without the credit both would be reported at 3500.
    REQUIRE(w.silent(3500));
    w.paused(3300, 3500);
    CHECK_FALSE(w.silent(3500));
    // Rank 2 speaks after the pause, rank 1 never does: rank 1 is reported
    // once its silence, the pause left out, passes the timeout.
    w.heard(2, 3600);
    CHECK_FALSE(w.silent(6300));
    auto s = w.silent(6500);
    REQUIRE(s);
    CHECK(s->peer == 1);
    CHECK(s->silent_ms == Approx(6500 - 100 - 3300));
    // A negative or zero pause changes nothing.
    w.paused(-5, 6500);
    w.paused(0, 6500);
    CHECK(w.silent(6500)->silent_ms == Approx(3100));
    // A peer's last sign of life never moves past now: rank 2, heard at
    // 3600, credited 5000 ms at 7000, is silent from 7000 on, not later.
    w.paused(5000, 7000);
    CHECK(w.heard(2, 7000) == Approx(0));
    CHECK(w.silent(7000 + 2999) == std::nullopt);
}

TEST_CASE("a peer whose port is unreachable is reported after the grace, unless it speaks", "[peer_watch]") {
    PeerWatch w({1, 2}, 0.0, 8000);
    CHECK(w.gone_grace_ms() == 1000);
    CHECK(PeerWatch({1}, 0.0, 400).gone_grace_ms() == 400);  // never past the timeout
    w.heard(1, 100.0);
    w.heard(2, 100.0);
    w.unreachable(1, 500.0);
    w.unreachable(1, 1400.0);  // a later answer does not restart the grace
    w.unreachable(9, 500.0);   // a stranger: ignored
    CHECK_FALSE(w.silent(1499.0));
    auto s = w.silent(1500.0);
    REQUIRE(s);
    CHECK(s->peer == 1);
    CHECK(s->gone);
    CHECK(s->silent_ms == Approx(1400.0));
    // A sign of life clears the answer: rank 2 answered unreachable, then
    // spoke (the answer was to an old address, or its bye is on the way).
    w.unreachable(2, 600.0);
    w.heard(2, 700.0);
    w.heard(1, 700.0);
    CHECK_FALSE(w.silent(5000.0));
    // A peer that left is never reported, whatever its port says.
    w.unreachable(2, 5000.0);
    w.left(2);
    CHECK_FALSE(w.silent(6500.0));
    // The watcher's pause moves the grace as it moves the silence.
    w.heard(1, 7900.0);
    w.unreachable(1, 8000.0);
    w.paused(500.0, 8600.0);
    CHECK_FALSE(w.silent(9499.0));  // 8500 + the grace
    s = w.silent(9500.0);
    REQUIRE(s);
    CHECK(s->gone);
}
