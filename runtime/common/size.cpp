#include "size.hpp"

#include <cctype>
#include <cmath>
#include <limits>

namespace tck {

std::uint64_t SizeSpec::resolve(std::uint64_t whole) const {
    if (!is_percent) return bytes;
    long double b = static_cast<long double>(whole) * percent / 100.0L;
    return static_cast<std::uint64_t>(std::floor(b));
}

namespace {

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

Status bad(std::string_view text, std::string_view why) {
    return error(TIERCKPT_ERR_INVALID, "invalid size '{}': {}; expected {}", text, why, kSizeForm);
}

}  // namespace

Result<SizeSpec> parse_size(std::string_view text, bool allow_percent) {
    std::string_view s = trim(text);
    if (s.empty()) return bad(text, "empty");

    if (s.back() == '%') {
        if (!allow_percent) return bad(text, "a percentage is not allowed here");
        s.remove_suffix(1);
        // Digits with at most one decimal point.
        double value = 0.0, scale = 0.0;
        bool any = false;
        for (char c : s) {
            if (c == '.' && scale == 0.0) {
                scale = 1.0;
            } else if (std::isdigit(static_cast<unsigned char>(c))) {
                any = true;
                if (scale == 0.0) {
                    value = value * 10 + (c - '0');
                } else {
                    scale /= 10;
                    value += (c - '0') * scale;
                }
            } else {
                return bad(text, "not a number before '%'");
            }
        }
        if (!any) return bad(text, "no digits before '%'");
        if (value <= 0.0 || value > 100.0) return bad(text, "a percentage must be above 0 and at most 100");
        SizeSpec spec;
        spec.is_percent = true;
        spec.percent = value;
        return spec;
    }

    std::uint64_t n = 0;
    std::size_t i = 0;
    for (; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i) {
        unsigned d = static_cast<unsigned>(s[i] - '0');
        if (n > (std::numeric_limits<std::uint64_t>::max() - d) / 10) return bad(text, "too large");
        n = n * 10 + d;
    }
    if (i == 0) return bad(text, "does not start with a digit");

    std::string_view suffix = s.substr(i);
    unsigned shift = 0;
    if (!suffix.empty()) {
        switch (std::toupper(static_cast<unsigned char>(suffix.front()))) {
        case 'K': shift = 10; break;
        case 'M': shift = 20; break;
        case 'G': shift = 30; break;
        case 'T': shift = 40; break;
        case 'B': shift = 0; break;
        default: return bad(text, "unknown suffix");
        }
        std::string_view rest = suffix.substr(1);
        bool unit_only = std::toupper(static_cast<unsigned char>(suffix.front())) == 'B';
        if (unit_only ? !rest.empty()
                      : !(rest.empty() || rest == "B" || rest == "b" || rest == "iB" || rest == "ib")) {
            return bad(text, "unknown suffix");
        }
    }
    if (shift && n > (std::numeric_limits<std::uint64_t>::max() >> shift)) return bad(text, "too large");
    SizeSpec spec;
    spec.bytes = n << shift;
    return spec;
}

std::string format_size(std::uint64_t bytes) {
    static constexpr const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    if (bytes < 1024) return fmt::format("{} B", bytes);
    double v = static_cast<double>(bytes);
    int u = 0;
    while (v >= 1024.0 && u < 5) {
        v /= 1024.0;
        ++u;
    }
    if (v == std::floor(v)) return fmt::format("{:.0f} {}", v, units[u]);
    return fmt::format("{:.1f} {}", v, units[u]);
}

}  // namespace tck
