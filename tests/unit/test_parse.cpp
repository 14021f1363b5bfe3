#include <catch2/catch.hpp>

#include "common/parse.hpp"

using tck::parse_kvargs;

TEST_CASE("known keys parse into a map", "[kvargs]") {
    auto kv = parse_kvargs({"a=1", "b=x=y", "c="}, {"a", "b", "c"});
    REQUIRE(kv);
    CHECK(kv->at("a") == "1");
    CHECK(kv->at("b") == "x=y");
    CHECK(kv->at("c").empty());
}

TEST_CASE("unknown, repeated and malformed keys are errors", "[kvargs]") {
    auto unknown = parse_kvargs({"a=1", "sotre_dir=/x"}, {"a", "store_dir"});
    REQUIRE_FALSE(unknown);
    CHECK(unknown.status().message().find("unknown key 'sotre_dir'") != std::string::npos);
    CHECK(unknown.status().message().find("known keys: a, store_dir") != std::string::npos);

    auto twice = parse_kvargs({"a=1", "a=2"}, {"a"});
    REQUIRE_FALSE(twice);
    CHECK(twice.status().message().find("given twice") != std::string::npos);

    for (const char *bad : {"a", "=1", ""}) {
        auto r = parse_kvargs({bad}, {"a"});
        REQUIRE_FALSE(r);
        CHECK(r.status().message().find("key=value") != std::string::npos);
    }
}

TEST_CASE("booleans", "[kvargs]") {
    CHECK(*tck::parse_bool("k", "yes"));
    CHECK(*tck::parse_bool("k", "1"));
    CHECK_FALSE(*tck::parse_bool("k", "off"));
    auto r = tck::parse_bool("prefault", "maybe");
    REQUIRE_FALSE(r);
    CHECK(r.status().message() == "prefault=maybe: expected yes or no");
}

TEST_CASE("bounded whole numbers", "[parse]") {
    CHECK(*tck::parse_uint("--ckpt-replicas", "0", 0, 16) == 0);
    CHECK(*tck::parse_uint("--ckpt-replicas", "16", 0, 16) == 16);
    for (const char *bad : {"", "-1", "17", "1.5", "1e3", " 1", "abc", "99999999999999999999999"}) {
        INFO("input: '" << bad << "'");
        auto r = tck::parse_uint("--ckpt-replicas", bad, 0, 16);
        REQUIRE_FALSE(r);
        CHECK(r.status().message().find(std::string("--ckpt-replicas=") + bad + ":") == 0);
        CHECK(r.status().message().find("expected a whole number from 0 to 16") != std::string::npos);
    }
}

TEST_CASE("absolute paths without tricks", "[parse]") {
    CHECK(*tck::parse_abs_path("--ckpt-persist", "/lustre/ckpt") == "/lustre/ckpt");
    CHECK(*tck::parse_abs_path("--ckpt-persist", "/") == "/");
    CHECK(*tck::parse_abs_path("--ckpt-persist", "/a/.hidden/b..c") == "/a/.hidden/b..c");
    for (const char *bad : {"", "relative/dir", "/a/../etc", "/a/./b", "/..", "/a//b", "/a/", "/a\nb", "/a\tb"}) {
        INFO("input: '" << bad << "'");
        auto r = tck::parse_abs_path("--ckpt-persist", bad);
        REQUIRE_FALSE(r);
        CHECK(r.status().message().find("expected an absolute path") != std::string::npos);
    }
    CHECK_FALSE(tck::parse_abs_path("x", std::string(5000, 'a').insert(0, "/")));
}

TEST_CASE("paths under a directory, component-wise", "[parse]") {
    CHECK(tck::path_is_under("/lustre/a/b", "/lustre"));
    CHECK(tck::path_is_under("/lustre", "/lustre"));
    CHECK(tck::path_is_under("/anything", "/"));
    CHECK_FALSE(tck::path_is_under("/lustre2/a", "/lustre"));
    CHECK_FALSE(tck::path_is_under("/lus", "/lustre"));
}
