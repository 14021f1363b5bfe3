#include <catch2/catch.hpp>

#include "../../runtime/common/kvargs.hpp"

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
