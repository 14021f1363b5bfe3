#include "crc32c.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <system_error>
#include <thread>
#include <vector>

#include "common/small_file.hpp"

#if defined(__x86_64__)
#include <cpuid.h>
#include <nmmintrin.h>
#endif

namespace tck {

namespace {

constexpr std::uint32_t kPoly = 0x82f63b78u;  // reflected Castagnoli polynomial

constexpr std::array<std::uint32_t, 256> make_table() {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t c = i;
        for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
        t[i] = c;
    }
    return t;
}
constexpr auto kTable = make_table();

// Raw CRC register operators (no pre/post inversion). Feeding zero bytes
// is linear over GF(2): an operator is the images of the 32 one-bit
// registers, and applying it XORs the images of the set bits.
using Op = std::array<std::uint32_t, 32>;

std::uint32_t apply(const Op &m, std::uint32_t v) {
    std::uint32_t r = 0;
    for (int i = 0; v; ++i, v >>= 1) {
        if (v & 1) r ^= m[static_cast<std::size_t>(i)];
    }
    return r;
}

Op compose(const Op &outer, const Op &inner) {
    Op r{};
    for (std::size_t i = 0; i < 32; ++i) r[i] = apply(outer, inner[i]);
    return r;
}

// Z(2^k bytes): the register after 2^k zero bytes, for k = 0..63.
struct ZeroOps {
    std::array<Op, 64> pow2{};
    ZeroOps() {
        Op one_bit{};  // one zero bit
        one_bit[0] = kPoly;
        for (std::size_t i = 1; i < 32; ++i) one_bit[i] = 1u << (i - 1);
        Op op = compose(one_bit, one_bit);  // 2 bits
        op = compose(op, op);               // 4 bits
        op = compose(op, op);               // 8 bits = 1 byte
        for (auto &p : pow2) {
            p = op;
            op = compose(op, op);
        }
    }
};
const ZeroOps &zero_ops() {
    static const ZeroOps z;
    return z;
}

// The raw register after `n` more zero bytes.
std::uint32_t shift(std::uint32_t reg, std::uint64_t n) {
    const auto &z = zero_ops();
    for (std::size_t k = 0; n; ++k, n >>= 1) {
        if (n & 1) reg = apply(z.pow2[k], reg);
    }
    return reg;
}

#if defined(__x86_64__)
// Three streams of 8-byte crc32 instructions over three consecutive lanes
// of a block, joined by shifting: the instruction's latency is three times
// its issue interval, so one stream uses a third of what the unit can do.
constexpr std::size_t kLane = 8192;

__attribute__((target("sse4.2"))) std::uint64_t crc32c_hw_stream(const unsigned char *p, std::size_t n,
                                                                   std::uint64_t c) {
    while (n >= 8) {
        std::uint64_t a;
        std::memcpy(&a, p, 8);
        c = _mm_crc32_u64(c, a);
        p += 8;
        n -= 8;
    }
    while (n--) c = _mm_crc32_u8(static_cast<std::uint32_t>(c), *p++);
    return c;
}

__attribute__((target("sse4.2"))) std::uint32_t crc32c_hw(const unsigned char *p, std::size_t n,
                                                            std::uint32_t crc) {
    std::uint64_t c = ~crc;
    while (n && (reinterpret_cast<std::uintptr_t>(p) & 7)) {
        c = _mm_crc32_u8(static_cast<std::uint32_t>(c), *p++);
        --n;
    }
    if (n >= 3 * kLane) {
        const Op &lane = zero_ops().pow2[13];  // 8192 = 2^13 bytes
        static_assert(kLane == 8192, "the lane operator is Z(2^13 bytes)");
        while (n >= 3 * kLane) {
            std::uint64_t a = c, b = 0, d = 0;
            for (std::size_t i = 0; i < kLane; i += 8) {
                std::uint64_t x, y, z;
                std::memcpy(&x, p + i, 8);
                std::memcpy(&y, p + kLane + i, 8);
                std::memcpy(&z, p + 2 * kLane + i, 8);
                a = _mm_crc32_u64(a, x);
                b = _mm_crc32_u64(b, y);
                d = _mm_crc32_u64(d, z);
            }
            std::uint32_t r = apply(lane, static_cast<std::uint32_t>(a)) ^ static_cast<std::uint32_t>(b);
            c = apply(lane, r) ^ static_cast<std::uint32_t>(d);
            p += 3 * kLane;
            n -= 3 * kLane;
        }
    }
    return ~static_cast<std::uint32_t>(crc32c_hw_stream(p, n, c));
}

bool detect_sse42() {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    return (c & bit_SSE4_2) != 0;
}
#endif

}  // namespace

std::uint32_t crc32c_portable(const void *data, std::size_t n, std::uint32_t crc) {
    auto p = static_cast<const unsigned char *>(data);
    std::uint32_t c = ~crc;
    while (n--) c = kTable[(c ^ *p++) & 0xff] ^ (c >> 8);
    return ~c;
}

bool crc32c_has_hardware() {
#if defined(__x86_64__)
    static const bool has = detect_sse42();
    return has;
#else
    return false;
#endif
}

std::uint32_t crc32c(const void *data, std::size_t n, std::uint32_t crc) {
#if defined(__x86_64__)
    if (crc32c_has_hardware()) return crc32c_hw(static_cast<const unsigned char *>(data), n, crc);
#endif
    return crc32c_portable(data, n, crc);
}

std::uint32_t crc32c_combine(std::uint32_t crc_a, std::uint32_t crc_b, std::uint64_t bytes_b) {
    return shift(crc_a, bytes_b) ^ crc_b;
}

std::uint32_t crc32c_parallel(const void *data, std::size_t n, unsigned threads, std::uint32_t crc_in) {
    const auto *p = static_cast<const unsigned char *>(data);
    constexpr std::size_t kMinPart = 8u << 20;  // below this a thread costs more than it saves
    std::size_t parts = std::min<std::size_t>(std::max(threads, 1u), n / kMinPart);
    if (parts <= 1) return crc32c(p, n, crc_in);
    std::size_t part = n / parts;
    std::vector<std::uint32_t> crc(parts);
    std::vector<std::thread> helpers;
    helpers.reserve(parts - 1);
    try {
        for (std::size_t i = 1; i < parts; ++i) {
            std::size_t len = i + 1 == parts ? n - i * part : part;
            helpers.emplace_back([&crc, i, p, part, len] { crc[i] = crc32c(p + i * part, len); });
        }
    } catch (const std::system_error &) {
        // No thread to be had: this thread does the rest.
        for (std::size_t i = helpers.size() + 1; i < parts; ++i) {
            crc[i] = crc32c(p + i * part, i + 1 == parts ? n - i * part : part);
        }
    }
    crc[0] = crc32c(p, part, crc_in);
    for (auto &t : helpers) t.join();
    std::uint32_t r = crc[0];
    for (std::size_t i = 1; i < parts; ++i) r = crc32c_combine(r, crc[i], i + 1 == parts ? n - i * part : part);
    return r;
}

void PieceCrc::add(const void *data, std::size_t n, unsigned threads) {
    const auto *p = static_cast<const unsigned char *>(data);
    if (partial_bytes_ > 0 && n > 0) {  // finish the piece begun before
        const auto k = static_cast<std::size_t>(std::min<std::uint64_t>(piece_ - partial_bytes_, n));
        partial_ = crc32c(p, k, partial_);
        partial_bytes_ += k;
        p += k;
        n -= k;
        if (partial_bytes_ == piece_) {
            done_.push_back(partial_);
            partial_ = 0;
            partial_bytes_ = 0;
        }
    }
    const std::size_t whole_pieces = static_cast<std::size_t>(n / piece_);
    if (whole_pieces > 0) {
        const std::size_t first = done_.size();
        done_.resize(first + whole_pieces);
        std::uint32_t *out = done_.data() + first;
        const auto piece = static_cast<std::size_t>(piece_);
        auto run = [out, p, piece](std::size_t from, std::size_t to) {
            for (std::size_t i = from; i < to; ++i) out[i] = crc32c(p + i * piece, piece);
        };
        // As crc32c_parallel: a thread is worth it for 8 MiB or more.
        constexpr std::uint64_t kMinPart = 8u << 20;
        std::size_t parts = std::min<std::size_t>(std::max(threads, 1u),
                                                  static_cast<std::size_t>(whole_pieces * piece_ / kMinPart));
        parts = std::max<std::size_t>(1, std::min(parts, whole_pieces));
        const std::size_t per = (whole_pieces + parts - 1) / parts;
        std::vector<std::thread> helpers;
        std::size_t next = per;  // this thread takes [0, per)
        try {
            for (; next < whole_pieces; next += per) {
                helpers.emplace_back(run, next, std::min(whole_pieces, next + per));
            }
        } catch (const std::system_error &) {
            run(next, whole_pieces);  // no thread to be had: this one does the rest
        }
        run(0, std::min(per, whole_pieces));
        for (auto &t : helpers) t.join();
        p += whole_pieces * piece;
        n -= whole_pieces * piece;
    }
    if (n > 0) {
        partial_ = crc32c(p, n, partial_);
        partial_bytes_ += n;
    }
}

std::vector<std::uint32_t> PieceCrc::pieces() const {
    std::vector<std::uint32_t> out = done_;
    if (partial_bytes_ > 0) out.push_back(partial_);
    return out;
}

std::uint32_t PieceCrc::whole() const {
    const std::vector<std::uint32_t> p = pieces();
    return crc32c_join_pieces(p.data(), p.size(), piece_, bytes());
}

std::uint32_t crc32c_join_pieces(const std::uint32_t *crcs, std::size_t count, std::uint64_t piece,
                                 std::uint64_t total) {
    std::uint32_t r = 0;
    for (std::size_t i = 0; i < count; ++i) {
        const std::uint64_t len = i + 1 == count ? total - i * piece : piece;
        r = crc32c_combine(r, crcs[i], len);
    }
    return r;
}

Result<std::uint32_t> crc32c_file(int fd, std::uint64_t off, std::uint64_t len, std::size_t piece,
                                  const std::string &shown) {
    std::vector<std::uint8_t> buf(static_cast<std::size_t>(std::min<std::uint64_t>(len, piece)));
    std::uint32_t crc = 0;
    for (std::uint64_t done = 0; done < len;) {
        auto n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), len - done));
        Status st = read_exact_at(fd, buf.data(), n, off + done, shown);
        if (!st) return st;
        crc = crc32c(buf.data(), n, crc);
        done += n;
    }
    return crc;
}

}  // namespace tck
