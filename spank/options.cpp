#include "options.hpp"

#include <cmath>
#include <cstdlib>

#include "common/parse.hpp"

namespace tck::spank {

namespace {

constexpr const char *name_of(Opt opt) {
    switch (opt) {
    case Opt::mem: return "--ckpt-mem";
    case Opt::replicas: return "--ckpt-replicas";
    case Opt::persist: return "--ckpt-persist";
    case Opt::persist_every: return "--ckpt-persist-every";
    case Opt::transport: return "--ckpt-transport";
    case Opt::persist_keep: return "--ckpt-persist-keep";
    case Opt::ckpt_interval: return "--ckpt-interval";
    case Opt::node_mtbf: return "--ckpt-node-mtbf";
    case Opt::max_overhead: return "--ckpt-max-overhead";
    case Opt::min_nodes: return "--ckpt-min-nodes";
    }
    return "--ckpt-?";
}

Status over_cap(const SizeSpec &asked, const Config &cfg, std::string_view where) {
    return error(TIERCKPT_ERR_INVALID,
                 "--ckpt-mem asks for {}{}, above the admin's cap max_mem ({}); ask for at most that much", describe(asked),
                 where, describe(cfg.max_mem));
}

}  // namespace

std::string plain_number(double v) {
    if (std::isinf(v) && v > 0) return "inf";
    // The shortest form that reads back exactly: plain digits from 1e-4 to
    // 1e16 (every value anyone means), an exponent beyond, which keeps it
    // short enough for the runtime's parsers (40 characters at most).
    return fmt::format("{}", v);
}

Status apply_option(Opt opt, const char *optarg, const Config &cfg, UserOptions &opts) {
    const char *name = name_of(opt);
    std::string_view arg = optarg ? optarg : "";
    switch (opt) {
    case Opt::mem: {
        opts.enabled = true;
        if (!optarg) {  // bare --ckpt-mem: the admin's default size
            opts.mem.reset();
            return Status::ok();
        }
        auto spec = parse_size(arg);
        if (!spec) return error(TIERCKPT_ERR_INVALID, "{}: {}", name, spec.status().message());
        if (!spec->is_percent && spec->bytes == 0) {
            return error(TIERCKPT_ERR_INVALID, "{}: invalid size '{}': the store must be larger than 0; expected {}",
                         name, arg, kSizeForm);
        }
        opts.mem = *spec;
        return Status::ok();
    }
    case Opt::replicas: {
        auto n = parse_uint(name, arg, 0, kMaxReplicas);
        if (!n) return n.status();
        opts.replicas = static_cast<unsigned>(*n);
        return Status::ok();
    }
    case Opt::persist: {
        auto p = parse_abs_path(name, arg);
        if (!p) return p.status();
        if (!cfg.persist_dirs.empty()) {
            bool allowed = false;
            for (const auto &dir : cfg.persist_dirs) allowed = allowed || path_is_under(*p, dir);
            if (!allowed) {
                std::string list;
                for (const auto &dir : cfg.persist_dirs) list += (list.empty() ? "" : ", ") + dir;
                return error(TIERCKPT_ERR_INVALID,
                             "{}={}: not below a directory the admin allows for checkpoints; use a directory under: {}",
                             name, arg, list);
            }
        }
        opts.persist_dir = *p;
        return Status::ok();
    }
    case Opt::persist_every: {
        if (arg == "auto") {  // chosen by the runtime's schedule (kPersistEveryAuto)
            opts.persist_every = kPersistEveryAuto;
            return Status::ok();
        }
        auto n = parse_uint(name, arg, 1, kMaxPersistEvery);
        if (!n) return error(n.status().code(), "{} (or auto: chosen by the checkpoint schedule)", n.status().message());
        opts.persist_every = *n;
        return Status::ok();
    }
    case Opt::persist_keep: {
        auto n = parse_uint(name, arg, 1, kMaxPersistKeep);
        if (!n) return n.status();
        opts.persist_keep = static_cast<std::uint32_t>(*n);
        return Status::ok();
    }
    case Opt::transport: {
        if (arg != "ucx" && arg != "ofi" && arg != "auto") {
            return error(TIERCKPT_ERR_INVALID, "{}={}: expected ucx, ofi or auto", name, arg);
        }
        opts.transport = std::string(arg);
        return Status::ok();
    }
    case Opt::ckpt_interval: {
        auto iv = parse_ckpt_interval(name, arg);
        if (!iv) return iv.status();
        switch (iv->kind) {
        case CkptInterval::Kind::automatic: opts.ckpt_interval = "auto"; break;
        case CkptInterval::Kind::steps: opts.ckpt_interval = std::to_string(iv->steps); break;
        // The unit stays: a bare number is a step count.
        case CkptInterval::Kind::duration: opts.ckpt_interval = plain_number(iv->seconds) + "s"; break;
        }
        return Status::ok();
    }
    case Opt::node_mtbf: {
        auto d = parse_node_mtbf(name, arg);
        if (!d) return d.status();
        opts.node_mtbf = plain_number(*d);
        return Status::ok();
    }
    case Opt::max_overhead: {
        auto share = parse_percent(name, arg);
        if (!share) return share.status();
        // The percentage as typed ("2.5" stays 2.5): the share times 100
        // can come back as 7.000000000000001.
        std::string pct(arg);
        if (pct.back() == '%') pct.pop_back();
        opts.max_overhead = plain_number(std::strtod(pct.c_str(), nullptr));
        return Status::ok();
    }
    case Opt::min_nodes: {
        auto n = parse_uint(name, arg, 1, kMaxMinNodes);
        if (!n) return n.status();
        opts.min_nodes = static_cast<std::uint32_t>(*n);
        return Status::ok();
    }
    }
    return error(TIERCKPT_ERR_INTERNAL, "unknown option {}", static_cast<int>(opt));
}

Result<Settings> settle(const UserOptions &opts, const Config &cfg) {
    if (!opts.enabled) {
        const char *orphan = opts.replicas ? "--ckpt-replicas"
                             : opts.persist_dir ? "--ckpt-persist"
                             : opts.persist_every ? "--ckpt-persist-every"
                             : opts.persist_keep ? "--ckpt-persist-keep"
                             : opts.transport ? "--ckpt-transport"
                             : opts.ckpt_interval ? "--ckpt-interval"
                             : opts.node_mtbf ? "--ckpt-node-mtbf"
                             : opts.max_overhead ? "--ckpt-max-overhead"
                             : opts.min_nodes ? "--ckpt-min-nodes"
                                                  : nullptr;
        if (orphan) {
            return error(TIERCKPT_ERR_INVALID,
                         "{} is given without --ckpt-mem; tierckpt is on only with --ckpt-mem=SIZE (e.g. --ckpt-mem=8G)",
                         orphan);
        }
        return Settings{};
    }
    if (opts.persist_every && !opts.persist_dir) {
        return error(TIERCKPT_ERR_INVALID,
                     "--ckpt-persist-every={} needs --ckpt-persist=DIR, the directory to flush checkpoints to",
                     *opts.persist_every == kPersistEveryAuto ? std::string("auto")
                                                              : std::to_string(*opts.persist_every));
    }
    if (opts.persist_keep && !opts.persist_dir) {
        return error(TIERCKPT_ERR_INVALID,
                     "--ckpt-persist-keep={} needs --ckpt-persist=DIR, the directory to flush checkpoints to",
                     *opts.persist_keep);
    }
    Settings s;
    s.mem = opts.mem ? *opts.mem : cfg.default_mem;
    s.replicas = opts.replicas ? *opts.replicas : cfg.default_replicas;
    if (opts.transport) s.transport = *opts.transport;
    if (opts.ckpt_interval) s.ckpt_interval = *opts.ckpt_interval;
    if (opts.node_mtbf) {
        s.node_mtbf = *opts.node_mtbf;
    } else if (cfg.node_mtbf_s) {
        s.node_mtbf = plain_number(*cfg.node_mtbf_s);
        s.node_mtbf_from_admin = true;
    }
    if (opts.max_overhead) s.max_overhead = *opts.max_overhead;
    if (opts.persist_dir) {
        s.persist_dir = *opts.persist_dir;
        s.persist_every_auto = opts.persist_every == kPersistEveryAuto;
        s.persist_every = !opts.persist_every                      ? kDefaultPersistEvery
                          : *opts.persist_every == kPersistEveryAuto ? 1
                                                                     : *opts.persist_every;
        s.persist_keep = opts.persist_keep ? *opts.persist_keep : kDefaultPersistKeep;
    }
    if (s.mem.is_percent == cfg.max_mem.is_percent) {
        bool over = s.mem.is_percent ? s.mem.percent > cfg.max_mem.percent : s.mem.bytes > cfg.max_mem.bytes;
        if (over) return over_cap(s.mem, cfg, "");
    }
    return s;
}

Result<std::uint64_t> store_bytes(const Settings &s, const Config &cfg, std::uint64_t node_mem) {
    std::uint64_t bytes = s.mem.resolve(node_mem);
    std::uint64_t cap = cfg.max_mem.resolve(node_mem);
    if (bytes > cap) {
        return error(TIERCKPT_ERR_INVALID,
                     "--ckpt-mem asks for {} on this node, above the admin's cap max_mem ({} = {} here); ask for at most "
                     "that much",
                     format_size(bytes), describe(cfg.max_mem), format_size(cap));
    }
    if (bytes == 0) {
        return error(TIERCKPT_ERR_INVALID, "--ckpt-mem={} is 0 bytes on a node with {} of memory; ask for more",
                     describe(s.mem), format_size(node_mem));
    }
    return bytes;
}

}  // namespace tck::spank
