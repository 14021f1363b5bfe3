#include "parse.hpp"

#include <climits>
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

}  // namespace tck
