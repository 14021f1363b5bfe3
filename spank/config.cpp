#include "config.hpp"

#include "../runtime/common/kvargs.hpp"

namespace tck::spank {

tck::Result<Config> parse_config(const std::vector<std::string_view> &args) {
    auto kv = parse_kvargs(args, {"log"});
    if (!kv) return kv.status();
    Config cfg;
    if (auto it = kv->find("log"); it != kv->end()) {
        if (!tck::log::parse_level(it->second, cfg.log_level)) {
            return tck::error(TIERCKPT_ERR_INVALID, "log={}: expected error, warn, info or debug", it->second);
        }
    }
    return cfg;
}

}  // namespace tck::spank
