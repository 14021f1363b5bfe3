#include "config.hpp"

#include <cctype>

#include "common/parse.hpp"

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

tck::Result<double> parse_node_mtbf(std::string_view what, std::string_view text) {
    auto d = parse_duration(text);
    // 0 would mean a failure at every instant: no schedule can follow that,
    // and it is more likely a slip than a measurement.
    if (!d || !(*d > 0)) {
        return error(TIERCKPT_ERR_INVALID,
                     "{}={}: expected a duration above 0 (30d, 3h, 90m, 1000s; no suffix: seconds), or inf for no "
                     "failures",
                     what, text);
    }
    return *d;
}

tck::Result<Config> parse_config(const std::vector<std::string_view> &args) {
    auto kv = parse_kvargs(args, {"store_dir", "max_mem", "default_mem", "default_replicas", "persist_dirs",
                                  "keep_seconds", "flush_seconds", "prefault", "log", "failure_domains",
                                  "topology_conf", "node_mtbf"});
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
        } else if (key == "failure_domains" && value == "topology") {
            cfg.topology_domains = true;
        } else if (key == "failure_domains") {
            cfg.failure_domains.clear();
            std::string_view rest = value;
            while (!rest.empty()) {
                auto semi = rest.find(';');
                std::string_view item = rest.substr(0, semi);
                auto colon = item.find(':');
                std::string_view name = item.substr(0, colon);
                if (colon == std::string_view::npos || !valid_domain_name(name)) {
                    return error(TIERCKPT_ERR_INVALID,
                                 "failure_domains: '{}': give NAME:HOSTLIST (NAME: up to 64 letters, digits, '_', '.', "
                                 "'-'), domains separated by ';', e.g. failure_domains=rackA:n[1-16];rackB:n[17-32], "
                                 "or failure_domains=topology",
                                 item);
                }
                std::string_view hosts = item.substr(colon + 1);
                if (auto ok = hostlist_contains(hosts, ""); !ok || hosts.empty()) {
                    return error(TIERCKPT_ERR_INVALID, "failure_domains: domain {}: {}", name,
                                 hosts.empty() ? std::string("no hosts") : ok.status().message());
                }
                for (const auto &d : cfg.failure_domains) {
                    if (d.name == name) return error(TIERCKPT_ERR_INVALID, "failure_domains: domain {} is named twice", name);
                }
                cfg.failure_domains.push_back({std::string(name), std::string(hosts)});
                if (semi == std::string_view::npos) break;
                rest.remove_prefix(semi + 1);
            }
        } else if (key == "topology_conf") {
            auto p = parse_abs_path("topology_conf", value);
            if (!p) return p.status();
            cfg.topology_conf = *p;
        } else if (key == "keep_seconds") {
            auto n = parse_uint(key, value, 0, kMaxKeepSeconds);
            if (!n) return n.status();
            cfg.keep_seconds = *n;
        } else if (key == "flush_seconds") {
            auto n = parse_uint(key, value, 0, kMaxFlushSeconds);
            if (!n) return n.status();
            cfg.flush_seconds = *n;
        } else if (key == "node_mtbf") {
            auto d = parse_node_mtbf(key, value);
            if (!d) return d.status();
            cfg.node_mtbf_s = *d;
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
    if (!cfg.topology_conf.empty() && !cfg.topology_domains) {
        return error(TIERCKPT_ERR_INVALID,
                     "topology_conf={} is read only with failure_domains=topology: add that, or remove topology_conf",
                     cfg.topology_conf);
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

tck::Result<bool> hostlist_contains(std::string_view hosts, std::string_view host) {
    auto bad = [&](std::string_view why) {
        return error(TIERCKPT_ERR_INVALID, "host list '{}': {}", hosts, why);
    };
    bool found = false;
    std::size_t at = 0;
    while (at < hosts.size()) {
        // One element: prefix[ranges]suffix, up to a ',' outside brackets.
        std::size_t open = std::string_view::npos, close = std::string_view::npos, end = at;
        for (; end < hosts.size() && (hosts[end] != ',' || (open != std::string_view::npos && close == std::string_view::npos)); ++end) {
            if (hosts[end] == '[') {
                if (open != std::string_view::npos) return bad("one [...] group per name");
                open = end;
            } else if (hosts[end] == ']') {
                if (open == std::string_view::npos || close != std::string_view::npos) return bad("unbalanced ]");
                close = end;
            } else if (!std::isalnum(static_cast<unsigned char>(hosts[end])) && hosts[end] != '-' && hosts[end] != '_' &&
                       hosts[end] != '.' && !(open != std::string_view::npos && close == std::string_view::npos && hosts[end] == ',')) {
                return bad(fmt::format("unexpected '{}'", hosts[end]));
            }
        }
        std::string_view elem = hosts.substr(at, end - at);
        if (elem.empty()) return bad("an empty name");
        if (open == std::string_view::npos) {
            found = found || elem == host;
        } else {
            if (close == std::string_view::npos) return bad("unbalanced [");
            std::string_view prefix = hosts.substr(at, open - at), suffix = hosts.substr(close + 1, end - close - 1);
            std::string_view ranges = hosts.substr(open + 1, close - open - 1);
            std::size_t r = 0;
            while (r <= ranges.size()) {
                std::size_t comma = ranges.find(',', r);
                std::string_view range = ranges.substr(r, comma == std::string_view::npos ? std::string_view::npos : comma - r);
                std::size_t dash = range.find('-');
                std::string_view lo = range.substr(0, dash), hi = dash == std::string_view::npos ? lo : range.substr(dash + 1);
                if (lo.empty() || hi.empty() || lo.find_first_not_of("0123456789") != std::string_view::npos ||
                    hi.find_first_not_of("0123456789") != std::string_view::npos || lo.size() > 9 || hi.size() > 9) {
                    return bad(fmt::format("'{}' is not a number or a range of numbers", range));
                }
                unsigned long a = std::stoul(std::string(lo)), b = std::stoul(std::string(hi));
                if (a > b) return bad(fmt::format("range {} goes down", range));
                std::size_t width = lo.size() > 1 && lo[0] == '0' ? lo.size() : 0;
                // Match host without expanding the whole range.
                if (host.size() > prefix.size() + suffix.size() && host.substr(0, prefix.size()) == prefix &&
                    host.substr(host.size() - suffix.size()) == suffix) {
                    std::string_view num = host.substr(prefix.size(), host.size() - prefix.size() - suffix.size());
                    if (num.find_first_not_of("0123456789") == std::string_view::npos && num.size() <= 9 &&
                        (width == 0 ? (num.size() == 1 || num[0] != '0') : num.size() == width)) {
                        unsigned long v = std::stoul(std::string(num));
                        found = found || (v >= a && v <= b);
                    }
                }
                if (comma == std::string_view::npos) break;
                r = comma + 1;
            }
        }
        at = end + 1;
    }
    return found;
}

bool valid_domain_name(std::string_view name) {
    return !name.empty() && name.size() <= 64 &&
           name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") ==
               std::string_view::npos;
}

std::string failure_domain_of(const Config &cfg, std::string_view host) {
    for (const auto &d : cfg.failure_domains) {
        auto in = hostlist_contains(d.hosts, host);
        if (in && *in) return d.name;
    }
    return "";
}

}  // namespace tck::spank
