#include "kvargs.hpp"

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

}  // namespace tck
