// The run report (common/run_report.hpp): what the runtime writes, tierckpt
// run reads back, field for field.
#include <catch2/catch.hpp>

#include "common/run_report.hpp"

using namespace tck::report;

TEST_CASE("a restore line reads back as it was written", "[run_report]") {
    Restore r;
    r.rank = 3;
    r.node = "n4";
    r.version = 12;
    r.source = "peer";
    r.bytes = 16777376;
    r.ms = 41.5;
    r.via = "ucx";
    r.parts = {2.5, 0.5, 30.25, 6.0, 1.5, 0.75, 4096, 16773280, 0, 6};
    const std::string line = format_restore(r);
    CHECK(line == "tierckpt-report restore rank=3 node=n4 version=12 source=peer bytes=16777376 ms=41.5 via=ucx "
                  "inventory_ms=2.5 plan_ms=0.5 move_ms=30.2 verify_ms=6.0 copy_ms=1.5 agree_ms=0.8 saved_world=6 "
                  "local_bytes=4096 peer_bytes=16773280 persistent_bytes=0");
    auto back = parse_restore("3: " + line + "\n");  // as srun -l relays it
    REQUIRE(back);
    CHECK(back->rank == 3);
    CHECK(back->node == "n4");
    CHECK(back->version == 12);
    CHECK(back->source == "peer");
    CHECK(back->bytes == 16777376);
    CHECK(back->ms == Approx(41.5));
    CHECK(back->via == "ucx");
    CHECK(back->parts.inventory_ms == Approx(2.5));
    CHECK(back->parts.plan_ms == Approx(0.5));
    CHECK(back->parts.move_ms == Approx(30.2));
    CHECK(back->parts.verify_ms == Approx(6.0));
    CHECK(back->parts.copy_ms == Approx(1.5));
    CHECK(back->parts.agree_ms == Approx(0.8));
    CHECK(back->parts.saved_world == 6);
    CHECK(back->parts.local_bytes == 4096);
    CHECK(back->parts.peer_bytes == 16773280);
    CHECK(back->parts.persistent_bytes == 0);
    // A line without the breakdown (a runtime before it) reads with zeros.
    auto bare = parse_restore("tierckpt-report restore rank=1 node=n2 version=4 source=local bytes=10 ms=3.0 via=store");
    REQUIRE(bare);
    CHECK(bare->parts.move_ms == 0);
    CHECK(bare->parts.saved_world == 0);
    CHECK(bare->parts.local_bytes == 0);
    CHECK(bare->via == "store");
    Restore none;
    none.rank = 0;
    none.node = "n1";
    none.source = "none";
    none.via = "none";
    auto fresh = parse_restore(format_restore(none));
    REQUIRE(fresh);
    CHECK(fresh->version == 0);
    CHECK(fresh->source == "none");
    CHECK_FALSE(parse_restore("rank=3 restored version=12 source=peer"));
    CHECK_FALSE(parse_restore("tierckpt-report restore rank=99999999999999999999 node=n1 version=1 source=local "
                              "bytes=1 ms=1.0 via=store"));
}

TEST_CASE("a commit line reads back as it was written", "[run_report]") {
    CHECK(format_commit(16) == "tierckpt-report commit version=16");
    CHECK(parse_commit("0: " + format_commit(16)) == std::optional<std::uint64_t>(16));
    CHECK_FALSE(parse_commit("committed version=16"));
}

TEST_CASE("a schedule line reads back as it was written", "[run_report]") {
    const std::string fields = "mode=auto step=2 steps=14 next=16 bound=optimum";
    const std::string line = format_schedule(fields);
    CHECK(line == "tierckpt-report schedule " + fields);
    CHECK(parse_schedule(line + "\n") == fields);
    CHECK(parse_schedule("0: " + line) == fields);
    CHECK_FALSE(parse_schedule("tierckpt-report commit version=3"));
    CHECK_FALSE(parse_schedule("saved version=2 schedule=auto"));
    // A program's line is never taken for more than a bounded report.
    CHECK(parse_schedule(format_schedule(std::string(5000, 'x')))->size() == 1024);
}
