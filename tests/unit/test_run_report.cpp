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
    const std::string line = format_restore(r);
    CHECK(line == "tierckpt-report restore rank=3 node=n4 version=12 source=peer bytes=16777376 ms=41.5 via=ucx");
    auto back = parse_restore("3: " + line + "\n");  // as srun -l relays it
    REQUIRE(back);
    CHECK(back->rank == 3);
    CHECK(back->node == "n4");
    CHECK(back->version == 12);
    CHECK(back->source == "peer");
    CHECK(back->bytes == 16777376);
    CHECK(back->ms == Approx(41.5));
    CHECK(back->via == "ucx");
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
