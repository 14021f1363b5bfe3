#include "crc32c.hpp"

#include <array>
#include <cstring>

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

#if defined(__x86_64__)
// One stream of 8-byte crc32 instructions, four per loop turn.
__attribute__((target("sse4.2"))) std::uint32_t crc32c_hw(const unsigned char *p, std::size_t n,
                                                            std::uint32_t crc) {
    std::uint64_t c = ~crc;
    while (n && (reinterpret_cast<std::uintptr_t>(p) & 7)) {
        c = _mm_crc32_u8(static_cast<std::uint32_t>(c), *p++);
        --n;
    }
    while (n >= 32) {
        std::uint64_t a, b, d, e;
        std::memcpy(&a, p, 8);
        std::memcpy(&b, p + 8, 8);
        std::memcpy(&d, p + 16, 8);
        std::memcpy(&e, p + 24, 8);
        c = _mm_crc32_u64(c, a);
        c = _mm_crc32_u64(c, b);
        c = _mm_crc32_u64(c, d);
        c = _mm_crc32_u64(c, e);
        p += 32;
        n -= 32;
    }
    while (n >= 8) {
        std::uint64_t a;
        std::memcpy(&a, p, 8);
        c = _mm_crc32_u64(c, a);
        p += 8;
        n -= 8;
    }
    while (n--) c = _mm_crc32_u8(static_cast<std::uint32_t>(c), *p++);
    return ~static_cast<std::uint32_t>(c);
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

}  // namespace tck
