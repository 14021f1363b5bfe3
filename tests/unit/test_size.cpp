#include <catch2/catch.hpp>

#include "common/size.hpp"

using tck::parse_size;

TEST_CASE("sizes with suffixes are powers of 1024", "[size]") {
    CHECK(parse_size("0")->bytes == 0);
    CHECK(parse_size("4096")->bytes == 4096);
    CHECK(parse_size("1K")->bytes == 1024);
    CHECK(parse_size("512M")->bytes == 512ull << 20);
    CHECK(parse_size("4G")->bytes == 4ull << 30);
    CHECK(parse_size("4g")->bytes == 4ull << 30);
    CHECK(parse_size("2T")->bytes == 2ull << 40);
    CHECK(parse_size("4GiB")->bytes == 4ull << 30);
    CHECK(parse_size("4GB")->bytes == 4ull << 30);
    CHECK(parse_size("100B")->bytes == 100);
    CHECK(parse_size(" 8M ")->bytes == 8ull << 20);
    CHECK_FALSE(parse_size("4G")->is_percent);
}

TEST_CASE("percentages resolve against the whole", "[size]") {
    auto p = parse_size("25%");
    REQUIRE(p);
    CHECK(p->is_percent);
    CHECK(p->resolve(1000) == 250);
    CHECK(parse_size("12.5%")->resolve(1ull << 30) == (1ull << 30) / 8);
    CHECK(parse_size("100%")->resolve(77) == 77);
    CHECK(parse_size("4G")->resolve(1) == 4ull << 30);
}

TEST_CASE("malformed sizes are rejected with the accepted form", "[size]") {
    for (const char *bad : {"", "G", "-1G", "4X", "4GX", "4 G", "1.5G", "0%", "101%", "abc%", "%", "4BB",
                            "99999999999999999999", "99999999999T"}) {
        INFO("input: '" << bad << "'");
        auto r = parse_size(bad);
        REQUIRE_FALSE(r);
        CHECK(r.status().code() == TIERCKPT_ERR_INVALID);
        CHECK(r.status().message().find("expected a number") != std::string::npos);
        CHECK(r.status().message().find(std::string("'") + bad + "'") != std::string::npos);
    }
}

TEST_CASE("percentages can be refused", "[size]") {
    auto r = parse_size("10%", false);
    REQUIRE_FALSE(r);
    CHECK(r.status().message().find("not allowed") != std::string::npos);
}

TEST_CASE("sizes format for people", "[size]") {
    CHECK(tck::format_size(100) == "100 B");
    CHECK(tck::format_size(1024) == "1 KiB");
    CHECK(tck::format_size(3ull << 29) == "1.5 GiB");
    CHECK(tck::format_size(512ull << 20) == "512 MiB");
}
