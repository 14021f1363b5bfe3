#include "config.hpp"

#include "../runtime/common/parse.hpp"

namespace tck::spank {

std::string describe(const SizeSpec &spec) {
    if (spec.is_percent) return fmt::format("{}% of the node's memory", spec.percent);
    return format_size(spec.bytes);
}

namespace {

Result<SizeSpec> parse_mem(std::string_view key, std::string_view value) {
    auto spec = parse_size(value);
    if (!spec) return error(TIERCKPT_ERR_INVALID, "{}: {}", key, spec.status().message());
    if (!spec->is_percent && spec->bytes == 0) {
        return error(TIERCKPT_ERR_INVALID, "{}={}: must be more than 0", key, value);
    }
    return spec;
}

}  // namespace

tck::Result<Config> parse_config(const std::vector<std::string_view> &args) {
    auto kv = parse_kvargs(args, {"store_dir", "max_mem", "default_mem", "default_replicas", "persist_dirs",
                                  "keep_seconds", "flush_seconds", "prefault", "log"});
    if (!kv) return kv.status();
    Config cfg;
    for (const auto &[key, value] : *kv) {
        if (key == "store_dir") {
            auto p = parse_abs_path("store_dir", value);
            if (!p) return p.status();
            if (*p == "/") return error(TIERCKPT_ERR_INVALID, "store_dir=/: name a directory below a tmpfs mount");
            cfg.store_dir = *p;
        } else if (key == "max_mem") {
            auto s = parse_mem(key, value);
            if (!s) return s.status();
            cfg.max_mem = *s;
        } else if (key == "default_mem") {
            auto s = parse_mem(key, value);
            if (!s) return s.status();
            cfg.default_mem = *s;
        } else if (key == "default_replicas") {
            auto n = parse_uint(key, value, 0, kMaxReplicas);
            if (!n) return n.status();
            cfg.default_replicas = static_cast<unsigned>(*n);
        } else if (key == "persist_dirs") {
            cfg.persist_dirs.clear();
            std::string_view rest = value;
            while (!rest.empty()) {
                auto colon = rest.find(':');
                auto p = parse_abs_path("persist_dirs", rest.substr(0, colon));
                if (!p) return p.status();
                cfg.persist_dirs.push_back(*p);
                if (colon == std::string_view::npos) break;
                rest.remove_prefix(colon + 1);
                if (rest.empty()) return error(TIERCKPT_ERR_INVALID, "persist_dirs={}: ends with ':'", value);
            }
        } else if (key == "keep_seconds") {
            auto n = parse_uint(key, value, 0, kMaxKeepSeconds);
            if (!n) return n.status();
            cfg.keep_seconds = *n;
        } else if (key == "flush_seconds") {
            auto n = parse_uint(key, value, 0, kMaxFlushSeconds);
            if (!n) return n.status();
            cfg.flush_seconds = *n;
        } else if (key == "prefault") {
            auto b = parse_bool(key, value);
            if (!b) return b.status();
            cfg.prefault = *b;
        } else if (key == "log") {
            if (!tck::log::parse_level(value, cfg.log_level)) {
                return error(TIERCKPT_ERR_INVALID, "log={}: expected error, warn, info or debug", value);
            }
        }
    }
    // When both are of one kind the order can be checked here, once for all
    // nodes; mixed kinds are checked per node against its memory.
    if (cfg.default_mem.is_percent == cfg.max_mem.is_percent) {
        bool over = cfg.default_mem.is_percent ? cfg.default_mem.percent > cfg.max_mem.percent
                                               : cfg.default_mem.bytes > cfg.max_mem.bytes;
        if (over) {
            return error(TIERCKPT_ERR_INVALID, "default_mem ({}) is above max_mem ({}): lower default_mem",
                         describe(cfg.default_mem), describe(cfg.max_mem));
        }
    }
    return cfg;
}

}  // namespace tck::spank
