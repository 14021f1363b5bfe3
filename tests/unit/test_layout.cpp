// The job-wide check of sliced and replicated regions (lib/save/layout.hpp)
// on layouts as the ranks would register them, and the layouts a region
// may have at all (store::layout_problem).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "lib/save/layout.hpp"
#include "lib/save/regions.hpp"
#include "store/crc32c.hpp"
#include "store/persist.hpp"

using namespace tck;
using store::RegionEntry;
using store::RegionKind;

namespace {

RegionEntry slice(const std::string &name, std::uint64_t offset, std::uint64_t bytes, std::uint64_t global) {
    return {name, bytes, {RegionKind::slice, offset, global}};
}
RegionEntry replicated(const std::string &name, std::uint64_t bytes) {
    return {name, bytes, {RegionKind::replicated, 0, bytes}};
}
std::string message(const Status &st) { return st ? std::string("ok") : st.message(); }

}  // namespace

TEST_CASE("layouts a region may have", "[layout]") {
    using store::layout_problem;
    using store::RegionLayout;
    CHECK(layout_problem({}, 100).empty());
    CHECK(layout_problem({RegionKind::slice, 0, 100}, 100).empty());
    CHECK(layout_problem({RegionKind::slice, 60, 100}, 40).empty());
    CHECK(layout_problem({RegionKind::slice, 100, 100}, 0).empty());  // an empty slice at the end
    CHECK(layout_problem({RegionKind::slice, 61, 100}, 40) ==
          "a slice of 40 bytes at offset 61 does not lie within a global array of 100 bytes");
    CHECK(layout_problem({RegionKind::slice, 101, 100}, 0) != "");
    // offset + bytes would wrap around: still refused.
    CHECK(layout_problem({RegionKind::slice, 10, UINT64_MAX}, UINT64_MAX - 5) != "");
    CHECK(layout_problem({RegionKind::slice, 0, 0}, 0) == "a slice of a global array of 0 bytes");
    CHECK(layout_problem({RegionKind::replicated, 0, 100}, 100).empty());
    CHECK(layout_problem({RegionKind::replicated, 0, 99}, 100) == "a replicated region is the whole array");
    CHECK(layout_problem({RegionKind::opaque, 0, 5}, 100) != "");
    CHECK(layout_problem({static_cast<RegionKind>(7), 0, 0}, 1) == "an unknown region kind");
}

TEST_CASE("slices that tile their global arrays pass, in any rank order", "[layout]") {
    // 3 ranks; "w" cut unevenly, "b" held by ranks 0 and 2 only (rank 1
    // holds none of it), "step" replicated.
    std::vector<std::vector<RegionEntry>> job{
        {slice("w", 0, 40, 100), slice("b", 8, 8, 16), replicated("step", 8)},
        {slice("w", 40, 35, 100), replicated("step", 8)},
        {replicated("step", 8), slice("w", 75, 25, 100), slice("b", 0, 8, 16)},
    };
    CHECK(message(check_job_layout(job)) == "ok");
    // No layout anywhere (opaque regions only): nothing to check.
    CHECK(message(check_job_layout({{}, {}, {}})) == "ok");
    // Empty slices are allowed anywhere they lie within the array.
    job[1].push_back(slice("e", 3, 0, 4));
    job[0].push_back(slice("e", 0, 4, 4));
    CHECK(message(check_job_layout(job)) == "ok");
}

TEST_CASE("a layout the ranks do not agree on is refused with the array, ranks and bytes", "[layout]") {
    SECTION("a gap") {
        std::vector<std::vector<RegionEntry>> job{{slice("w", 0, 40, 100)}, {slice("w", 50, 50, 100)}};
        CHECK(message(check_job_layout(job)) ==
              "bytes [40, 50) of the global array 'w' (100 bytes) are in no rank's slice");
    }
    SECTION("the end missing") {
        std::vector<std::vector<RegionEntry>> job{{slice("w", 0, 40, 100)}, {slice("w", 40, 50, 100)}};
        CHECK(message(check_job_layout(job)) ==
              "bytes [90, 100) of the global array 'w' (100 bytes) are in no rank's slice");
    }
    SECTION("an overlap") {
        std::vector<std::vector<RegionEntry>> job{{slice("w", 0, 60, 100)}, {slice("w", 50, 50, 100)}};
        CHECK(message(check_job_layout(job)) ==
              "ranks 0 and 1 both hold bytes [50, 60) of the global array 'w'; slices must not overlap");
    }
    SECTION("the same slice twice") {
        std::vector<std::vector<RegionEntry>> job{
            {slice("w", 0, 50, 100)}, {slice("w", 50, 50, 100)}, {slice("w", 50, 50, 100)}};
        CHECK(message(check_job_layout(job)) ==
              "ranks 1 and 2 both hold bytes [50, 100) of the global array 'w'; slices must not overlap");
    }
    SECTION("global sizes that differ") {
        std::vector<std::vector<RegionEntry>> job{{slice("w", 0, 50, 100)}, {slice("w", 50, 70, 120)}};
        CHECK(message(check_job_layout(job)) ==
              "the global array 'w' has 100 bytes on rank 0 and 120 on rank 1; every slice must give the same "
              "global size");
    }
    SECTION("kinds that differ") {
        std::vector<std::vector<RegionEntry>> job{{slice("x", 0, 8, 8)}, {replicated("x", 8)}};
        CHECK(message(check_job_layout(job)) == "region 'x' is slice on rank 0 and replicated on rank 1");
    }
    SECTION("a replicated region missing on a rank") {
        std::vector<std::vector<RegionEntry>> job{{replicated("step", 8)}, {}, {replicated("step", 8)}};
        CHECK(message(check_job_layout(job)) ==
              "replicated region 'step' is registered on 2 of 3 ranks (not on rank 1); register it on every rank, "
              "or as a slice");
    }
    SECTION("a replicated region of another size") {
        std::vector<std::vector<RegionEntry>> job{{replicated("step", 8)}, {replicated("step", 16)}};
        CHECK(message(check_job_layout(job)) == "replicated region 'step' has 8 bytes on rank 0 and 16 on rank 1");
    }
    SECTION("an opaque region and slices under one name") {
        std::vector<std::vector<RegionEntry>> job{{{"w", 50, {}}}, {slice("w", 50, 50, 100)}};
        CHECK(message(check_job_layout(job)) == "region 'w' is opaque on rank 0 and slice on rank 1");
        // Opaque on every rank: each rank's own, no rule across ranks.
        std::vector<std::vector<RegionEntry>> own{{{"w", 50, {}}}, {{"w", 70, {}}}};
        CHECK(message(check_job_layout(own)) == "ok");
    }
    SECTION("a replicated region twice on one rank and missing on another (a rewritten manifest)") {
        std::vector<std::vector<RegionEntry>> job{{replicated("step", 8), replicated("step", 8)}, {}};
        CHECK(message(check_job_layout(job)) ==
              "replicated region 'step' is registered on 1 of 2 ranks (not on rank 1); register it on every rank, "
              "or as a slice");
    }
    SECTION("a slice whose end wraps around (a rewritten manifest)") {
        std::vector<std::vector<RegionEntry>> job{{slice("w", 0, 50, 100)},
                                                  {slice("w", 50, UINT64_MAX - 49, 100)}};
        CHECK(message(check_job_layout(job)) ==
              "rank 1: region 'w': a slice of 18446744073709551566 bytes at offset 50 does not lie within a global "
              "array of 100 bytes");
    }
    SECTION("the first problem by name, whatever the rank order") {
        std::vector<std::vector<RegionEntry>> job{{slice("z", 0, 1, 2), slice("a", 0, 1, 2)}, {}};
        CHECK(message(check_job_layout(job)) == "bytes [1, 2) of the global array 'a' (2 bytes) are in no rank's slice");
    }
}

TEST_CASE("a shard with layouts: the second manifest form, read back and matched", "[layout]") {
    std::vector<std::uint8_t> store(1 << 16);
    std::vector<std::uint8_t> w(40, 7), step(8, 1), own(5, 3);
    RegionSet regions(store.data(), store.size(), false, 0);
    REQUIRE(regions.add("w", w.data(), w.size(), {RegionKind::slice, 60, 100}));
    REQUIRE(regions.add("step", step.data(), step.size(), {RegionKind::replicated, 0, 8}));
    REQUIRE(regions.add("own", own.data(), own.size()));
    // Refused at registration: a slice beyond its array.
    Status beyond = regions.add("v", w.data(), w.size(), {RegionKind::slice, 70, 100});
    CHECK(message(beyond) == "region 'v': a slice of 40 bytes at offset 70 does not lie within a global array of 100 "
                             "bytes");
    CHECK(regions.entries().size() == 3);
    CHECK(regions.entries()[0].layout == store::RegionLayout{RegionKind::slice, 60, 100});

    const std::uint64_t payload = regions.payload_bytes();
    CHECK(payload == store::manifest_bytes(3, true) + 53);
    CHECK(store::manifest_bytes(3, true) == 16 + 3 * 88);
    std::vector<std::uint8_t> shard(payload);
    const std::uint64_t m = regions.write_manifest(shard.data());
    CHECK(m == store::manifest_bytes(3, true));
    CHECK(std::memcmp(shard.data(), "TCKSHRD2", 8) == 0);
    auto parsed = store::parse_shard_manifest(shard.data(), shard.size());
    REQUIRE(parsed);
    REQUIRE(parsed->size() == 3);
    CHECK((*parsed)[0].layout == store::RegionLayout{RegionKind::slice, 60, 100});
    CHECK((*parsed)[1].layout.kind == RegionKind::replicated);
    CHECK((*parsed)[2].layout.kind == RegionKind::opaque);
    CHECK(store::manifest_bytes_for(*parsed) == m);
    CHECK(message(regions.match(*parsed)) == "ok");

    // Another cut of "w" at restore: refused, naming both.
    RegionSet other(store.data(), store.size(), false, 0);
    REQUIRE(other.add("w", w.data(), w.size(), {RegionKind::slice, 20, 100}));
    REQUIRE(other.add("step", step.data(), step.size(), {RegionKind::replicated, 0, 8}));
    REQUIRE(other.add("own", own.data(), own.size()));
    CHECK(message(other.match(*parsed)) ==
          "the checkpoint's region 'w' is bytes [60, 100) of a global array of 100; the registered one is bytes "
          "[20, 60) of a global array of 100");

    // What a peer or a rewritten store may hand over: an unknown kind, a
    // slice beyond its array, a layout manifest with no layout.
    // Rewrites entry i of a copy of the shard.
    auto edit = [](std::vector<std::uint8_t> &copy, std::size_t i, auto change) {
        std::uint8_t *at = copy.data() + sizeof(store::ManifestHead) + i * sizeof(store::LayoutEntry);
        store::LayoutEntry e;
        std::memcpy(&e, at, sizeof e);
        change(e);
        std::memcpy(at, &e, sizeof e);
    };
    auto parse_error = [](const std::vector<std::uint8_t> &c) {
        return message(store::parse_shard_manifest(c.data(), c.size()).status());
    };
    auto bad_kind = shard;
    edit(bad_kind, 0, [](store::LayoutEntry &e) { e.kind = 9; });
    CHECK(store::parse_shard_manifest(bad_kind.data(), bad_kind.size()).status().code() == TIERCKPT_ERR_CORRUPT);
    CHECK(parse_error(bad_kind) == "shard manifest: region 0: unknown kind 9");
    auto beyond_array = shard;
    edit(beyond_array, 0, [](store::LayoutEntry &e) { e.global_offset = 61; });
    CHECK(parse_error(beyond_array) ==
          "shard manifest: region 0: a slice of 40 bytes at offset 61 does not lie within a global array of 100 bytes");
    auto no_layout = shard;
    for (std::size_t i : {0, 1}) {
        edit(no_layout, i, [](store::LayoutEntry &e) { e.kind = 0, e.global_offset = 0, e.global_bytes = 0; });
    }
    CHECK(parse_error(no_layout) == "shard manifest: a layout manifest whose regions have no layout");
    auto twice = shard;
    edit(twice, 2, [](store::LayoutEntry &e) { std::memcpy(e.name, "step", 5); });
    CHECK(parse_error(twice) == "shard manifest: region 2: a second region named 'step'");

    // Opaque regions alone keep the first form (and its size).
    RegionSet plain(store.data(), store.size(), false, 0);
    REQUIRE(plain.add("own", own.data(), own.size()));
    CHECK(plain.payload_bytes() == store::manifest_bytes(1) + 5);
    std::vector<std::uint8_t> p(plain.payload_bytes());
    plain.write_manifest(p.data());
    CHECK(std::memcmp(p.data(), "TCKSHRD1", 8) == 0);
}

TEST_CASE("an elastic restore's pieces: a saved manifest read from the persistent tier, planned copies placed",
          "[layout]") {
    // Saved rank 1 of 2: bytes [50, 100) of "w" (100 bytes) and "step".
    std::vector<std::uint8_t> w(50), step(8, 7), store(4096);
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<std::uint8_t>(50 + i);  // the global index
    RegionSet saved(store.data(), store.size(), false, 0);
    REQUIRE(saved.add("step", step.data(), step.size(), {RegionKind::replicated, 0, 8}));
    REQUIRE(saved.add("w", w.data(), w.size(), {RegionKind::slice, 50, 100}));
    std::vector<std::uint8_t> shard(saved.payload_bytes());
    const std::uint64_t m = saved.write_manifest(shard.data());
    std::memcpy(shard.data() + m, step.data(), step.size());
    std::memcpy(shard.data() + m + step.size(), w.data(), w.size());

    // Written as a flush writes it; its manifest read back alone.
    char tmpl[] = "/dev/shm/tck-elastic-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    const std::string root = std::string(tmpl) + "/run";
    {
        auto dir = persist::Dir::open(root, true);
        REQUIRE(dir);
        persist::ShardMeta meta;
        meta.rank = 1;
        meta.world = 2;
        meta.version = 12;
        meta.bytes = shard.size();
        meta.crc = crc32c(shard.data(), shard.size());
        REQUIRE(dir->write_shard(meta, shard.data(), shard.size(), true));
        const persist::ShardEntry line{meta.bytes, meta.crc, true};
        auto entries = dir->read_shard_manifest(12, 1, line);
        REQUIRE(entries);
        REQUIRE(entries->size() == 2);
        CHECK((*entries)[1].name == "w");
        CHECK((*entries)[1].layout == store::RegionLayout{RegionKind::slice, 50, 100});
        // A MANIFEST line of another size: refused before reading.
        auto wrong = dir->read_shard_manifest(12, 1, {meta.bytes + 1, meta.crc, true});
        REQUIRE_FALSE(wrong);
        CHECK(wrong.status().code() == TIERCKPT_ERR_CORRUPT);
        // A count the file cannot hold: refused before anything is sized by it.
        std::vector<std::uint8_t> lying = shard;
        const std::uint32_t huge = 1u << 30;
        std::memcpy(lying.data() + 8, &huge, sizeof huge);
        meta.version = 13;
        meta.crc = crc32c(lying.data(), lying.size());
        REQUIRE(dir->write_shard(meta, lying.data(), lying.size(), true));
        auto bounded = dir->read_shard_manifest(13, 1, {meta.bytes, meta.crc, true});
        REQUIRE_FALSE(bounded);
        CHECK(bounded.status().message().find("more regions than the file holds") != std::string::npos);
    }
    (void)!std::system(("rm -rf '" + std::string(tmpl) + "'").c_str());

    // A new rank 0 of 3 holds bytes [0, 34) of "w": none from this shard;
    // new rank 1 holds [34, 67): bytes [50, 67) come from it, at offset 16.
    std::vector<std::uint8_t> mine(33, 0), my_step(8, 0);
    RegionSet now(store.data(), store.size(), false, 1);
    REQUIRE(now.add("step", my_step.data(), my_step.size(), {RegionKind::replicated, 0, 8}));
    REQUIRE(now.add("w", mine.data(), mine.size(), {RegionKind::slice, 34, 100}));
    auto parsed = store::parse_shard_manifest(shard.data(), shard.size());
    REQUIRE(parsed);
    REQUIRE(now.copy_slices(shard.data(), *parsed, {{1, 0, 0, 0, 0, 8}, {1, 1, 0, 1, 16, 17}}));
    CHECK(my_step == step);
    for (std::size_t i = 0; i < mine.size(); ++i) {
        INFO(i);
        CHECK(mine[i] == (i < 16 ? 0 : 34 + i));  // global index 34 + i, from the saved slice
    }
    // A copy outside either region: refused, nothing read past it.
    Status outside = now.copy_slices(shard.data(), *parsed, {{1, 1, 40, 1, 0, 17}});
    CHECK(outside.code() == TIERCKPT_ERR_INTERNAL);
    CHECK(now.copy_slices(shard.data(), *parsed, {{1, 1, 0, 1, 20, 17}}).code() == TIERCKPT_ERR_INTERNAL);
    CHECK(now.copy_slices(shard.data(), *parsed, {{1, 2, 0, 1, 0, 1}}).code() == TIERCKPT_ERR_INTERNAL);
}
