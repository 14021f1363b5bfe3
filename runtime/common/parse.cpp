#include "parse.hpp"

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <string>
#include <limits>

namespace tck {

namespace {
std::string join_keys(const std::set<std::string_view> &keys) {
    std::string out;
    for (auto k : keys) {
        if (!out.empty()) out += ", ";
        out += k;
    }
    return out.empty() ? "(none)" : out;
}
}  // namespace

Result<KvArgs> parse_kvargs(const std::vector<std::string_view> &args,
                            const std::set<std::string_view> &known_keys) {
    KvArgs out;
    for (std::string_view arg : args) {
        auto eq = arg.find('=');
        if (eq == std::string_view::npos || eq == 0) {
            return error(TIERCKPT_ERR_INVALID, "argument '{}' is not of the form key=value (known keys: {})", arg,
                         join_keys(known_keys));
        }
        std::string_view key = arg.substr(0, eq), value = arg.substr(eq + 1);
        if (known_keys.count(key) == 0) {
            return error(TIERCKPT_ERR_INVALID, "unknown key '{}' in '{}' (known keys: {})", key, arg,
                         join_keys(known_keys));
        }
        if (out.count(key) != 0) {
            return error(TIERCKPT_ERR_INVALID, "key '{}' given twice; give each key once", key);
        }
        out.emplace(std::string(key), std::string(value));
    }
    return out;
}

Result<bool> parse_bool(std::string_view key, std::string_view value) {
    if (value == "yes" || value == "true" || value == "1" || value == "on") return true;
    if (value == "no" || value == "false" || value == "0" || value == "off") return false;
    return error(TIERCKPT_ERR_INVALID, "{}={}: expected yes or no", key, value);
}

Result<std::uint64_t> parse_uint(std::string_view what, std::string_view text, std::uint64_t min,
                                 std::uint64_t max) {
    auto bad = [&](std::string_view why) {
        return error(TIERCKPT_ERR_INVALID, "{}={}: {}; expected a whole number from {} to {}", what, text, why, min,
                     max);
    };
    if (text.empty()) return bad("empty");
    std::uint64_t n = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return bad("not a whole number");
        unsigned d = static_cast<unsigned>(c - '0');
        if (n > (std::numeric_limits<std::uint64_t>::max() - d) / 10) return bad("too large");
        n = n * 10 + d;
    }
    if (n < min || n > max) return bad("out of range");
    return n;
}

Result<std::string> parse_abs_path(std::string_view what, std::string_view text) {
    auto bad = [&](std::string_view why) {
        return error(TIERCKPT_ERR_INVALID, "{}={}: {}; expected an absolute path such as /lustre/ckpt", what, text,
                     why);
    };
    if (text.empty()) return bad("empty");
    if (text.front() != '/') return bad("not an absolute path");
    if (text.size() >= PATH_MAX) return bad("too long");
    for (char c : text) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return bad("contains a control character");
    }
    if (text.size() > 1 && text.back() == '/') return bad("ends with '/'");
    std::string_view rest = text.substr(1);
    while (!rest.empty()) {
        auto slash = rest.find('/');
        std::string_view comp = rest.substr(0, slash);
        if (comp.empty()) return bad("contains '//'");
        if (comp == "." || comp == "..") return bad("contains a '.' or '..' component");
        if (slash == std::string_view::npos) break;
        rest.remove_prefix(slash + 1);
    }
    return std::string(text);
}

bool path_is_under(std::string_view path, std::string_view dir) {
    if (dir == "/") return true;
    if (path.size() < dir.size() || path.substr(0, dir.size()) != dir) return false;
    return path.size() == dir.size() || path[dir.size()] == '/';
}

// A number with an optional suffix from `suffixes` (each a multiplier).
Result<double> parse_scaled(std::string_view text, const char *what,
                            std::initializer_list<std::pair<char, double>> suffixes, const char *form) {
    std::string s(text);
    if (s.empty() || s.size() > 40) return error(TIERCKPT_ERR_INVALID, "{} '{}': expected {}", what, s, form);
    double scale = 1;
    char last = s.back();
    for (auto [c, m] : suffixes) {
        if (last == c || last == c - 'A' + 'a') {
            scale = m;
            s.pop_back();
            break;
        }
    }
    char *end = nullptr;
    errno = 0;
    double v = std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size() || errno != 0 || !std::isfinite(v) || v < 0) {
        return error(TIERCKPT_ERR_INVALID, "{} '{}': expected {}", what, std::string(text), form);
    }
    return v * scale;
}

Result<double> parse_duration(std::string_view text) {
    if (text == "inf" || text == "none") return std::numeric_limits<double>::infinity();
    return parse_scaled(text, "duration", {{'S', 1}, {'M', 60}, {'H', 3600}, {'D', 86400}},
                        "a duration such as 30s, 90m, 3h, 264d (no suffix: seconds), or inf");
}

Result<double> parse_percent(std::string_view what, std::string_view text) {
    std::string v(text);
    if (!v.empty() && v.back() == '%') v.pop_back();
    char *end = nullptr;
    errno = 0;
    double p = v.size() > 40 || v.empty() ? -1 : std::strtod(v.c_str(), &end);
    if (v.empty() || v.size() > 40 || *end != '\0' || errno != 0 || !(p > 0 && p < 100)) {
        return error(TIERCKPT_ERR_INVALID, "{}={}: expected a percentage above 0 and below 100, such as 2 or 2%",
                     std::string(what), std::string(text));
    }
    return p / 100;
}

Result<CkptInterval> parse_ckpt_interval(std::string_view what, std::string_view text) {
    CkptInterval iv;
    if (text == "auto") return iv;
    const std::string form =
        "auto, a number of steps (e.g. 100), or a duration with its unit (e.g. 90s, 10m, 1h)";
    if (!text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos) {
        auto n = parse_uint(what, text, 1, 1000000000);
        if (!n) return error(TIERCKPT_ERR_INVALID, "{}={}: expected {}", std::string(what), std::string(text), form);
        iv.kind = CkptInterval::Kind::steps;
        iv.steps = *n;
        return iv;
    }
    const char last = text.empty() ? '\0' : text.back();
    auto d = std::string_view("sSmMhHdD").find(last) == std::string_view::npos ? Result<double>(error(TIERCKPT_ERR_INVALID, "no unit"))
                                                                              : parse_duration(text);
    if (!d || !(*d > 0) || std::isinf(*d) || *d > 366 * 86400.0) {
        return error(TIERCKPT_ERR_INVALID, "{}={}: expected {}", std::string(what), std::string(text), form);
    }
    iv.kind = CkptInterval::Kind::duration;
    iv.seconds = *d;
    return iv;
}

}  // namespace tck
