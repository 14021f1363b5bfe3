// The key this rank asks libfabric for when it registers memory for remote
// access, where the provider takes the application's key (mr_mode without
// FI_MR_PROV_KEY). The key is what a remote read must name, so it must not
// be guessable: a fixed key let anything that reaches the endpoint read the
// whole node store. Pure, unit-tested (tests/unit/test_msg_check.cpp).
#pragma once

#include <cstddef>
#include <cstdint>

namespace tck {

// random: 64 random bits. key_size: the domain's mr_key_size, the bytes a
// requested key may use (libfabric: "applications that request their own
// MR key must select a value within the range specified by this value");
// 0 (not given) or 8 and more: all 64 bits.
constexpr std::uint64_t fit_mr_key(std::uint64_t random, std::size_t key_size) {
    if (key_size == 0 || key_size >= sizeof(std::uint64_t)) return random;
    return random & ((std::uint64_t{1} << (8 * key_size)) - 1);
}

}  // namespace tck
