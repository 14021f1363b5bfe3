#include <catch2/catch.hpp>

#include <cstring>
#include <random>
#include <vector>

#include "../../runtime/lib/crc32c.hpp"

TEST_CASE("CRC32C matches the standard check values", "[crc32c]") {
    const char *s = "123456789";
    CHECK(tck::crc32c(s, 9) == 0xE3069283u);
    CHECK(tck::crc32c_portable(s, 9) == 0xE3069283u);
    std::vector<unsigned char> zeros(32, 0);
    CHECK(tck::crc32c(zeros.data(), zeros.size()) == 0x8A9136AAu);  // RFC 3720 B.4
    CHECK(tck::crc32c(nullptr, 0) == 0u);
}

TEST_CASE("hardware and portable CRC32C agree at every length and alignment; CRCs chain", "[crc32c]") {
    std::mt19937_64 rng(42);
    std::vector<unsigned char> buf(4096 + 16);
    for (auto &b : buf) b = static_cast<unsigned char>(rng());
    for (std::size_t off = 0; off < 8; ++off) {
        for (std::size_t n : {0u, 1u, 7u, 8u, 9u, 31u, 32u, 33u, 100u, 4096u}) {
            INFO("offset " << off << " length " << n);
            CHECK(tck::crc32c(buf.data() + off, n) == tck::crc32c_portable(buf.data() + off, n));
        }
    }
    std::uint32_t whole = tck::crc32c(buf.data(), 1000);
    std::uint32_t parts = tck::crc32c(buf.data() + 300, 700, tck::crc32c(buf.data(), 300));
    CHECK(whole == parts);
    buf[500] ^= 1;
    CHECK(tck::crc32c(buf.data(), 1000) != whole);
}
