// Sizes as users and admins write them: "512M", "4G", "1T", "8192" (bytes),
// or "25%" of a whole (the node's memory). Suffixes are powers of 1024;
// an optional trailing "B"/"iB" is accepted ("4GiB", "4GB" both mean 4 GiB).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "status.hpp"

namespace tck {

struct SizeSpec {
    bool is_percent = false;
    std::uint64_t bytes = 0;  // when !is_percent
    double percent = 0.0;     // when is_percent, in (0, 100]

    // Bytes this spec stands for, given the whole that a percentage refers to.
    std::uint64_t resolve(std::uint64_t whole) const;
};

// The accepted form, for error messages.
inline constexpr std::string_view kSizeForm =
    "a number with an optional K, M, G or T suffix (powers of 1024, e.g. 512M, 4G) or a percentage (e.g. 25%)";

Result<SizeSpec> parse_size(std::string_view text, bool allow_percent = true);

// "1.5 GiB", "512 MiB", "100 B": for messages and listings.
std::string format_size(std::uint64_t bytes);

}  // namespace tck
