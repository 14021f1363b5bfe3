#include <catch2/catch.hpp>

#include <cstring>
#include <random>
#include <vector>

#include "store/crc32c.hpp"

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

TEST_CASE("the interleaved hardware CRC32C agrees with the portable one on large buffers", "[crc32c]") {
    // Three 8 KiB lanes per block: lengths around one and two blocks, and
    // unaligned starts, so the lane joins and the tails are all exercised.
    std::mt19937_64 rng(7);
    std::vector<unsigned char> buf(3 * 24576 + 64);
    for (auto &b : buf) b = static_cast<unsigned char>(rng());
    for (std::size_t off : {0u, 3u}) {
        for (std::size_t n : {24575u, 24576u, 24577u, 24576u + 8191u, 49152u, 49152u + 13u, 3u * 24576u}) {
            INFO("offset " << off << " length " << n);
            CHECK(tck::crc32c(buf.data() + off, n) == tck::crc32c_portable(buf.data() + off, n));
        }
    }
    std::uint32_t chained = tck::crc32c(buf.data() + 30000, 40000, tck::crc32c(buf.data(), 30000));
    CHECK(chained == tck::crc32c_portable(buf.data(), 70000));
}

TEST_CASE("crc32c_combine joins the CRCs of two parts", "[crc32c]") {
    std::mt19937_64 rng(11);
    std::vector<unsigned char> buf(100000);
    for (auto &b : buf) b = static_cast<unsigned char>(rng());
    for (std::size_t cut : {0u, 1u, 8u, 999u, 50000u, 99999u, 100000u}) {
        INFO("cut at " << cut);
        std::uint32_t a = tck::crc32c(buf.data(), cut), b = tck::crc32c(buf.data() + cut, buf.size() - cut);
        CHECK(tck::crc32c_combine(a, b, buf.size() - cut) == tck::crc32c(buf.data(), buf.size()));
    }
    // The length matters: the same two CRCs with a wrong length differ.
    std::uint32_t a = tck::crc32c(buf.data(), 500), b = tck::crc32c(buf.data() + 500, 99500);
    CHECK(tck::crc32c_combine(a, b, 99499) != tck::crc32c(buf.data(), buf.size()));
}

TEST_CASE("crc32c_parallel gives the serial CRC for any thread count", "[crc32c]") {
    std::mt19937_64 rng(3);
    std::vector<unsigned char> buf((41u << 20) + 13);
    for (std::size_t i = 0; i + 8 <= buf.size(); i += 8) {
        std::uint64_t x = rng();
        std::memcpy(&buf[i], &x, 8);
    }
    const std::uint32_t serial = tck::crc32c_portable(buf.data(), buf.size());
    for (unsigned t : {0u, 1u, 2u, 3u, 5u, 64u}) {
        INFO(t << " threads");
        CHECK(tck::crc32c_parallel(buf.data(), buf.size(), t) == serial);
    }
    CHECK(tck::crc32c_parallel(buf.data() + 1, 1000, 4) == tck::crc32c(buf.data() + 1, 1000));
    // Continuing a CRC, as the checksum behind save's copy does piece by piece.
    const std::size_t cut = (9u << 20) + 3;
    CHECK(tck::crc32c_parallel(buf.data() + cut, buf.size() - cut, 3, tck::crc32c(buf.data(), cut)) == serial);
    buf[(30u << 20) + 5] ^= 0x80;  // in a later part
    CHECK(tck::crc32c_parallel(buf.data(), buf.size(), 4) != serial);
}

TEST_CASE("PieceCrc gives every piece's CRC and the whole one, however the stream is fed", "[crc32c]") {
    std::mt19937_64 rng(5);
    const std::uint64_t piece = 1u << 20;
    std::vector<unsigned char> buf((19u << 20) + 777);  // 19 whole pieces and a short one
    for (std::size_t i = 0; i + 8 <= buf.size(); i += 8) {
        std::uint64_t x = rng();
        std::memcpy(&buf[i], &x, 8);
    }
    std::vector<std::uint32_t> want;
    for (std::size_t at = 0; at < buf.size(); at += piece) {
        want.push_back(tck::crc32c_portable(buf.data() + at, std::min<std::size_t>(piece, buf.size() - at)));
    }
    const std::uint32_t whole = tck::crc32c_portable(buf.data(), buf.size());
    // Fed at once, in parts that straddle pieces, byte by byte at the
    // edges, with threads: the same pieces.
    for (unsigned threads : {1u, 2u, 3u, 8u}) {
        for (std::size_t part : {buf.size(), std::size_t{(3u << 20) + 5}, std::size_t{piece}, std::size_t{4099}}) {
            INFO(threads << " threads, parts of " << part);
            tck::PieceCrc c(piece);
            for (std::size_t at = 0; at < buf.size(); at += part) {
                c.add(buf.data() + at, std::min(part, buf.size() - at), threads);
            }
            CHECK(c.bytes() == buf.size());
            CHECK(c.pieces() == want);
            CHECK(c.whole() == whole);
            CHECK(tck::crc32c_join_pieces(want.data(), want.size(), piece, buf.size()) == whole);
        }
    }
    // A stream that ends on a boundary has no partial piece.
    tck::PieceCrc exact(piece);
    exact.add(buf.data(), 2 * piece, 2);
    CHECK(exact.pieces() == std::vector<std::uint32_t>{want[0], want[1]});
    CHECK(exact.whole() == tck::crc32c(buf.data(), 2 * piece));
    CHECK(tck::PieceCrc(piece).whole() == 0);
    // A changed byte changes its piece's CRC alone.
    buf[(7u << 20) + 9] ^= 1;
    tck::PieceCrc changed(piece);
    changed.add(buf.data(), buf.size(), 4);
    auto got = changed.pieces();
    for (std::size_t i = 0; i < want.size(); ++i) CHECK((got[i] == want[i]) == (i != 7));
    CHECK(changed.whole() != whole);
}
