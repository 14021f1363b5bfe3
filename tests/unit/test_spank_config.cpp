#include <catch2/catch.hpp>

#include "../../spank/config.hpp"

TEST_CASE("plugstack arguments: defaults and log level", "[spank]") {
    auto def = tck::spank::parse_config({});
    REQUIRE(def);
    CHECK(def->log_level == tck::log::Level::warn);

    auto dbg = tck::spank::parse_config({"log=debug"});
    REQUIRE(dbg);
    CHECK(dbg->log_level == tck::log::Level::debug);
}

TEST_CASE("plugstack arguments: bad input names the problem", "[spank]") {
    auto unknown = tck::spank::parse_config({"storedir=/x"});
    REQUIRE_FALSE(unknown);
    CHECK(unknown.status().message().find("unknown key 'storedir'") != std::string::npos);

    auto badlvl = tck::spank::parse_config({"log=loud"});
    REQUIRE_FALSE(badlvl);
    CHECK(badlvl.status().message() == "log=loud: expected error, warn, info or debug");
}
