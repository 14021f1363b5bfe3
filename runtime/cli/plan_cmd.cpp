// `tierckpt plan`: before a run, from a model's size and the job's shape,
// the checkpoint's bytes per part, rank and node, the --ckpt-mem the
// runtime needs (store_bytes_for: as allocate() lays the store out), the
// expected costs per tier and the schedule the runtime's model
// (schedule/interval.hpp) chooses. tierckpt(1) documents every option.
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "common/defaults.hpp"
#include "common/parse.hpp"
#include "common/size.hpp"
#include "plan_model.hpp"
#include "lib/schedule/interval.hpp"
#include "store/crc32c.hpp"
#include "store/store_format.hpp"
#include "store_cmds.hpp"

namespace tck::cli {

namespace {

constexpr const char *kPlanUsage = R"(Usage: tierckpt plan [OPTIONS]

Sizes a job's checkpoints before it runs: bytes per part, rank and node, the
--ckpt-mem to ask for, what a save, a commit and a flush cost, and the
checkpoint interval that loses the least time to saving and failures.

The model (one of):
  --params N              parameters (70B, 8.03e9; K, M, B, T: powers of 1000)
  --layers L --hidden H --vocab V [--ffn F] [--heads A] [--kv-heads K]
          [--experts E] [--no-gate] [--tied-embeddings]
                          a decoder-only transformer's shape (Llama, Mixtral)
  --from-store STORE      the shard sizes a real node store holds
Precision:
  --weights DTYPE         weights' dtype (default bf16)
  --master DTYPE          fp32 master weights, or none (default none)
  --optimizer NAME        adam, adamw, sgd, none (default adam)
  --moments DTYPE         optimizer moments' dtype (default fp32)
The job:
  --nodes N               nodes (required, except with --from-store)
  --gpus-per-node G       ranks per node (default 8)
  --replicas R            copies on other nodes, --ckpt-replicas (default 1)
  --regions N             regions each rank registers (default: one per part)
Costs (GB/s are 10^9 bytes per second):
  --copy-bw GBPS          one rank's copy into the store (default: measured here)
  --checksum-bw GBPS      one thread's CRC32C (default: measured here)
  --link-bw GBPS          a node's network link (default 25, one 200 Gb/s port)
  --storage-bw GBPS       the persistent tier, all nodes together (default: none,
                          no persistent tier)
  --restart DURATION      failure to relaunched, before the restore (default 60s)
The schedule:
  --step-time DURATION    one training step (required for the schedule)
  --mtbf DURATION         a node's mean time between failures (default 264d: Llama 3
                          pre-training's 419 unexpected interruptions in 54 days
                          on 2,048 nodes)
  --job-mtbf DURATION     the whole job's, instead of --mtbf / nodes
  --persist-fraction F    share of failures memory cannot recover from (default 0
                          with replicas, 1 without)
  --persist-every K|auto  flush every Kth committed version (default auto: chosen,
                          as --ckpt-persist-every=auto does in a job)
  --max-overhead PCT      at most PCT % of the time spent saving
Output:
  --json                  one JSON object
  -h, --help              this help

DURATION: 30s, 90m, 3h, 264d (no suffix: seconds). See tierckpt(1) and
tierckpt(7), SCHEDULE.
)";

struct Args {
    std::optional<std::uint64_t> params;
    Transformer shape;
    bool has_shape = false;
    std::string from_store;
    Precision precision;
    std::uint64_t nodes = 0;
    std::uint64_t ranks_per_node = 8;
    std::uint64_t replicas = 1;
    std::uint64_t regions = 0;
    std::optional<double> copy_gbps, checksum_gbps, storage_gbps;
    double link_gbps = 25;
    double restart_s = defaults::kRestartS;
    std::optional<double> step_s;
    double node_mtbf_s = defaults::kNodeMtbfS;
    std::optional<double> job_mtbf_s;
    std::optional<double> persist_fraction;
    std::uint64_t persist_every = 0;
    double max_overhead = 0;
    bool json = false;
};

Result<double> parse_positive(const std::string &opt, const std::string &v) {
    char *end = nullptr;
    errno = 0;
    double d = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || errno != 0 || !std::isfinite(d) || !(d > 0) || d > 1e9) {
        return error(TIERCKPT_ERR_INVALID, "{}={}: expected a number above 0", opt, v);
    }
    return d;
}

Result<double> parse_positive_duration(const std::string &opt, const std::string &v, bool allow_inf) {
    auto d = parse_duration(v);
    if (!d) return error(TIERCKPT_ERR_INVALID, "{}: {}", opt, d.status().message());
    if (!(*d > 0) || (!allow_inf && std::isinf(*d))) {
        return error(TIERCKPT_ERR_INVALID, "{}={}: expected a duration above 0", opt, v);
    }
    return *d;
}

// Parses the command line; an error names the option and what it takes.
Result<Args> parse_args(const std::vector<std::string> &argv, bool &help) {
    Args a;
    const std::vector<std::string> flags = {"--json", "--no-gate", "--tied-embeddings", "-h", "--help"};
    for (std::size_t i = 0; i < argv.size(); ++i) {
        std::string opt = argv[i], val;
        bool is_flag = std::find(flags.begin(), flags.end(), opt) != flags.end();
        if (!is_flag) {
            auto eq = opt.find('=');
            if (opt.rfind("--", 0) == 0 && eq != std::string::npos) {
                val = opt.substr(eq + 1);
                opt = opt.substr(0, eq);
            } else if (opt.rfind("--", 0) == 0 && i + 1 < argv.size()) {
                val = argv[++i];
            } else if (opt.rfind("--", 0) == 0) {
                return error(TIERCKPT_ERR_INVALID, "{} needs a value; see tierckpt plan --help", opt);
            } else {
                return error(TIERCKPT_ERR_INVALID, "unexpected argument '{}'; see tierckpt plan --help", opt);
            }
        }
        auto set_u = [&](std::uint64_t &dst, std::uint64_t lo, std::uint64_t hi) -> Status {
            auto r = tck::parse_uint(opt, val, lo, hi);
            if (!r) return r.status();
            dst = *r;
            return Status::ok();
        };
        auto set_bw = [&](std::optional<double> &dst) -> Status {
            auto r = parse_positive(opt, val);
            if (!r) return r.status();
            dst = *r;
            return Status::ok();
        };
        Status st = Status::ok();
        if (opt == "-h" || opt == "--help") {
            help = true;
        } else if (opt == "--json") {
            a.json = true;
        } else if (opt == "--no-gate") {
            a.shape.gated = false;
        } else if (opt == "--tied-embeddings") {
            a.shape.tied_embeddings = true;
        } else if (opt == "--params") {
            auto r = parse_count(val);
            if (!r) return r.status();
            a.params = *r;
        } else if (opt == "--layers") {
            st = set_u(a.shape.layers, 1, 100000);
            a.has_shape = true;
        } else if (opt == "--hidden") {
            st = set_u(a.shape.hidden, 1, 1u << 24);
            a.has_shape = true;
        } else if (opt == "--vocab") {
            st = set_u(a.shape.vocab, 1, 1u << 26);
            a.has_shape = true;
        } else if (opt == "--ffn") {
            st = set_u(a.shape.ffn, 1, 1u << 26);
            a.has_shape = true;
        } else if (opt == "--heads") {
            st = set_u(a.shape.heads, 1, 1u << 20);
            a.has_shape = true;
        } else if (opt == "--kv-heads") {
            st = set_u(a.shape.kv_heads, 1, 1u << 20);
            a.has_shape = true;
        } else if (opt == "--experts") {
            st = set_u(a.shape.experts, 1, 1u << 16);
            a.has_shape = true;
        } else if (opt == "--from-store") {
            if (val.empty()) return error(TIERCKPT_ERR_INVALID, "--from-store needs a store's path (inside a job step: $TIERCKPT_STORE)");
            a.from_store = val;
        } else if (opt == "--weights") {
            a.precision.weights = val;
        } else if (opt == "--master") {
            a.precision.master = val;
        } else if (opt == "--optimizer") {
            a.precision.optimizer = val;
        } else if (opt == "--moments") {
            a.precision.moments = val;
        } else if (opt == "--nodes") {
            if (val == "0") return error(TIERCKPT_ERR_INVALID, "--nodes=0: a job runs on at least one node");
            auto r = tck::parse_uint(opt, val, 1, 1000000);
            if (!r) return r.status();
            a.nodes = *r;
        } else if (opt == "--gpus-per-node") {
            st = set_u(a.ranks_per_node, 1, store::kMaxSlots);
        } else if (opt == "--replicas") {
            st = set_u(a.replicas, 0, 64);
        } else if (opt == "--regions") {
            st = set_u(a.regions, 1, 1000000);
        } else if (opt == "--copy-bw") {
            st = set_bw(a.copy_gbps);
        } else if (opt == "--checksum-bw") {
            st = set_bw(a.checksum_gbps);
        } else if (opt == "--storage-bw") {
            st = set_bw(a.storage_gbps);
        } else if (opt == "--link-bw") {
            auto r = parse_positive(opt, val);
            if (!r) return r.status();
            a.link_gbps = *r;
        } else if (opt == "--restart") {
            auto r = parse_duration(val);
            if (!r || std::isinf(*r)) return error(TIERCKPT_ERR_INVALID, "--restart={}: expected a duration", val);
            a.restart_s = *r;
        } else if (opt == "--step-time") {
            auto r = parse_positive_duration(opt, val, false);
            if (!r) return r.status();
            a.step_s = *r;
        } else if (opt == "--mtbf") {
            auto r = parse_positive_duration(opt, val, true);
            if (!r) return r.status();
            a.node_mtbf_s = *r;
        } else if (opt == "--job-mtbf") {
            auto r = parse_positive_duration(opt, val, true);
            if (!r) return r.status();
            a.job_mtbf_s = *r;
        } else if (opt == "--persist-fraction") {
            char *end = nullptr;
            double f = std::strtod(val.c_str(), &end);
            if (val.empty() || *end != '\0' || !(f >= 0 && f <= 1)) {
                return error(TIERCKPT_ERR_INVALID, "--persist-fraction={}: expected a number from 0 to 1", val);
            }
            a.persist_fraction = f;
        } else if (opt == "--persist-every") {
            // auto: chosen, as the runtime's --ckpt-persist-every=auto does.
            if (val == "auto") a.persist_every = 0;
            else if (!(st = set_u(a.persist_every, 1, 1000000))) st = error(st.code(), "{}, or auto", st.message());
        } else if (opt == "--max-overhead") {
            auto p = parse_percent(opt, val);
            if (!p) return p.status();
            a.max_overhead = *p;
        } else {
            return error(TIERCKPT_ERR_INVALID, "unknown option {}; see tierckpt plan --help", opt);
        }
        if (!st) return st;
    }
    if (help) return a;
    int sources = (a.params ? 1 : 0) + (a.has_shape ? 1 : 0) + (a.from_store.empty() ? 0 : 1);
    if (sources != 1) {
        return error(TIERCKPT_ERR_INVALID, "{}: give the model as one of --params N, a shape (--layers, --hidden, "
                                           "--vocab, ...), or --from-store STORE",
                     sources ? "more than one model given" : "no model given");
    }
    if (a.from_store.empty() && a.nodes == 0) {
        return error(TIERCKPT_ERR_INVALID, "--nodes is missing: how many nodes does the job run on?");
    }
    return a;
}

// Best of three timed passes of `fn` over `bytes`, in GB/s.
template <class Fn>
double measure_gbps(std::size_t bytes, Fn fn) {
    double best = std::numeric_limits<double>::infinity();
    for (int rep = 0; rep < 3; ++rep) {
        auto t0 = std::chrono::steady_clock::now();
        fn();
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return static_cast<double>(bytes) / best / 1e9;
}

struct Measured {
    double copy_gbps = 0;
    double checksum_gbps = 0;
};

// A memcpy of 64 MiB into touched memory and a CRC32C over it, here.
Result<Measured> measure_here() {
    const std::size_t bytes = 64u << 20;
    void *src = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void *dst = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (src == MAP_FAILED || dst == MAP_FAILED) {
        if (src != MAP_FAILED) ::munmap(src, bytes);
        if (dst != MAP_FAILED) ::munmap(dst, bytes);
        return error(TIERCKPT_ERR_NO_MEMORY, "cannot map 128 MiB to measure the copy; give --copy-bw and --checksum-bw");
    }
    std::memset(src, 0x5a, bytes);
    std::memset(dst, 0, bytes);
    Measured m;
    m.copy_gbps = measure_gbps(bytes, [&] { std::memcpy(dst, src, bytes); });
    volatile std::uint32_t sink = 0;
    m.checksum_gbps = measure_gbps(bytes, [&] { sink = tck::crc32c(src, bytes); });
    (void)sink;
    ::munmap(src, bytes);
    ::munmap(dst, bytes);
    return m;
}

// --ckpt-mem as the plugin parses it: rounded up to 2 MiB (a huge page),
// or to a whole GiB from 10 GiB on.
std::string ckpt_mem_arg(std::uint64_t bytes) {
    const std::uint64_t mib = 1u << 20;
    std::uint64_t m = (bytes + 2 * mib - 1) / (2 * mib) * 2;
    if (m >= 10 * 1024) m = (m + 1023) / 1024 * 1024;
    if (m % 1024 == 0) return fmt::format("{}G", m / 1024);
    return fmt::format("{}M", m);
}

std::string seconds_text(double s) {
    if (std::isinf(s)) return "never";
    if (s < 1) return fmt::format("{:.0f} ms", s * 1000);
    if (s < 120) return fmt::format("{:.1f} s", s);
    if (s < 7200) return fmt::format("{:.1f} min", s / 60);
    if (s < 172800) return fmt::format("{:.1f} h", s / 3600);
    return fmt::format("{:.1f} d", s / 86400);
}

std::string json_number(double v) {
    if (!std::isfinite(v)) return "null";
    return fmt::format("{:.6g}", v);
}

struct StoreSizes {
    std::vector<std::uint64_t> payloads;  // this node's ranks' shards of the newest version
    std::uint32_t world = 0;
    std::uint32_t regions = 0;
    std::uint64_t version = 0;
};

Result<StoreSizes> sizes_from_store(const std::string &path) {
    auto r = store::StoreReader::open(path);
    if (!r) return r.status();
    if (!r->header_valid()) {
        return error(TIERCKPT_ERR_CORRUPT, "{} is not a tierckpt node store (its header is not valid)", path);
    }
    StoreSizes s;
    std::map<std::uint32_t, std::uint64_t> by_rank;
    for (const auto &sh : r->shards()) {
        if (sh.rec.kind != store::kOwnShard) continue;
        if (sh.rec.version > s.version) {
            s.version = sh.rec.version;
            by_rank.clear();
        }
        if (sh.rec.version == s.version) {
            by_rank[sh.rec.rank] = sh.rec.payload_bytes;
            s.world = sh.rec.world;
            s.regions = std::max(s.regions, sh.rec.nregions);
        }
    }
    if (by_rank.empty()) {
        return error(TIERCKPT_ERR_NOT_FOUND, "{} holds no complete shard of its node's ranks; plan from a store a job "
                                             "has saved into",
                     path);
    }
    for (auto &[rank, bytes] : by_rank) s.payloads.push_back(bytes);
    return s;
}

}  // namespace

int cmd_plan(const std::vector<std::string> &argv) {
    bool help = false;
    auto parsed = parse_args(argv, help);
    if (help) {
        std::fputs(kPlanUsage, stdout);
        return 0;
    }
    if (!parsed) {
        fmt::print(stderr, "tierckpt plan: {}\n", parsed.status().message());
        return 2;
    }
    Args a = std::move(*parsed);

    // What a rank saves.
    std::uint64_t params = 0, tensors = 0;
    std::vector<Part> parts;
    std::vector<std::uint64_t> own;  // this node's shards' payloads
    if (!a.from_store.empty()) {
        auto s = sizes_from_store(a.from_store);
        if (!s) {
            fmt::print(stderr, "tierckpt plan: {}\n", s.status().message());
            return 1;
        }
        own = s->payloads;
        a.ranks_per_node = own.size();
        if (a.nodes == 0) a.nodes = std::max<std::uint64_t>(1, (s->world + own.size() - 1) / own.size());
        std::uint64_t total = 0;
        for (auto b : own) total += b;
        parts.push_back({"shards (as saved)", "-", total * a.nodes});
        a.regions = s->regions;
    } else {
        if (a.has_shape) {
            auto c = count_params(a.shape);
            if (!c) {
                fmt::print(stderr, "tierckpt plan: {}\n", c.status().message());
                return 2;
            }
            params = c->params;
            tensors = c->tensors;
        } else {
            params = *a.params;
        }
        auto p = checkpoint_parts(params, a.precision);
        if (!p) {
            fmt::print(stderr, "tierckpt plan: {}\n", p.status().message());
            return 2;
        }
        parts = *p;
        if (a.regions == 0) a.regions = parts.size();
    }
    const std::uint64_t ranks = a.nodes * a.ranks_per_node;
    if (a.replicas >= a.nodes && a.replicas > 0) {
        fmt::print(stderr,
                   "tierckpt plan: --replicas={} needs at least {} nodes (every copy lives on another node); the job has "
                   "{}\n",
                   a.replicas, a.replicas + 1, a.nodes);
        return 2;
    }
    if (own.empty()) {
        std::uint64_t shard = store::manifest_bytes(a.regions);
        for (const auto &p : parts) shard += per_rank(p.bytes, ranks);
        own.assign(a.ranks_per_node, shard);
    }
    std::uint64_t node_bytes = 0;
    for (auto b : own) node_bytes += b;
    const std::uint64_t shard_bytes = *std::max_element(own.begin(), own.end());
    std::vector<std::uint64_t> kept;  // replicas this node keeps: R partner nodes shaped like it
    for (std::uint64_t r = 0; r < a.replicas; ++r) kept.insert(kept.end(), own.begin(), own.end());
    auto no_wait = store::store_bytes_for(own, 3, kept, 2);
    auto at_least = store::store_bytes_for(own, 2, kept, 2);
    // With a persistent tier, a flush keeps the version it writes (own
    // shards and copies) while newer ones commit: one version more of each,
    // or saves wait for the flush while it outlasts a commit.
    std::optional<Result<std::uint64_t>> flushing;
    if (a.storage_gbps) flushing = store::store_bytes_for(own, 4, kept, 3);
    if (!at_least) {
        fmt::print(stderr, "tierckpt plan: {}\n", at_least.status().message());
        return 2;
    }

    // What each tier costs.
    std::string copy_src = "given", sum_src = "given";
    if (!a.copy_gbps || !a.checksum_gbps) {
        auto m = measure_here();
        if (!m) {
            fmt::print(stderr, "tierckpt plan: {}\n", m.status().message());
            return 1;
        }
        if (!a.copy_gbps) {
            a.copy_gbps = m->copy_gbps;
            copy_src = "measured here";
        }
        if (!a.checksum_gbps) {
            a.checksum_gbps = m->checksum_gbps;
            sum_src = "measured here";
        }
    }
    schedule::Costs costs;
    costs.stall_s = static_cast<double>(shard_bytes) / (*a.copy_gbps * 1e9);
    const double checksum_s = static_cast<double>(shard_bytes) / (*a.checksum_gbps * 1e9);
    const double replicate_s = static_cast<double>(node_bytes * a.replicas) / (a.link_gbps * 1e9);
    costs.commit_s = checksum_s + replicate_s;
    const double restore_s = static_cast<double>(node_bytes) / (a.link_gbps * 1e9);
    costs.restart_s = a.restart_s + restore_s;
    const double total_bytes = static_cast<double>(node_bytes) * static_cast<double>(a.nodes);
    if (a.storage_gbps) {
        costs.flush_s = std::max(total_bytes / (*a.storage_gbps * 1e9), static_cast<double>(node_bytes) / (a.link_gbps * 1e9));
        costs.restart_persist_s = a.restart_s + costs.flush_s;
    }
    schedule::Failures fail;
    fail.persistent_tier = a.storage_gbps.has_value();
    fail.job_mtbf_s = a.job_mtbf_s ? *a.job_mtbf_s : a.node_mtbf_s / static_cast<double>(a.nodes);
    fail.persist_fraction = a.persist_fraction ? *a.persist_fraction : (a.replicas ? 0.0 : 1.0);
    std::optional<schedule::Schedule> sched;
    if (a.step_s) {
        schedule::Limits lim;
        lim.step_s = *a.step_s;
        lim.max_overhead = a.max_overhead;
        lim.persist_every = a.persist_every;
        sched = schedule::choose(costs, fail, lim);
    }

    if (a.json) {
        std::string o = "{";
        // params and tensors: null when the sizes came from a store.
        o += fmt::format("\"params\":{},\"tensors\":{},\"nodes\":{},\"ranks_per_node\":{},\"ranks\":{},\"replicas\":{},",
                         params ? std::to_string(params) : "null", tensors ? std::to_string(tensors) : "null", a.nodes,
                         a.ranks_per_node, ranks, a.replicas);
        o += "\"parts\":[";
        for (std::size_t i = 0; i < parts.size(); ++i) {
            o += fmt::format("{}{{\"name\":{},\"dtype\":{},\"bytes\":{},\"per_rank\":{},\"per_node\":{}}}", i ? "," : "",
                             json_string(parts[i].name), json_string(parts[i].dtype), parts[i].bytes,
                             per_rank(parts[i].bytes, ranks), per_rank(parts[i].bytes, ranks) * a.ranks_per_node);
        }
        o += "],";
        o += fmt::format("\"shard_bytes\":{},\"node_bytes\":{},\"regions\":{},", shard_bytes, node_bytes, a.regions);
        const bool fl = flushing && *flushing;
        o += fmt::format("\"ckpt_mem\":{{\"bytes\":{},\"arg\":{},\"min_bytes\":{},\"min_arg\":{},"
                         "\"flushing_bytes\":{},\"flushing_arg\":{}}},",
                         no_wait ? std::to_string(*no_wait) : "null",
                         no_wait ? json_string(ckpt_mem_arg(*no_wait)) : "null", *at_least,
                         json_string(ckpt_mem_arg(*at_least)), fl ? std::to_string(**flushing) : "null",
                         fl ? json_string(ckpt_mem_arg(**flushing)) : "null");
        o += fmt::format("\"costs\":{{\"copy_gbps\":{},\"copy_source\":{},\"checksum_gbps\":{},\"checksum_source\":{},"
                         "\"link_gbps\":{},\"storage_gbps\":{},\"stall_s\":{},\"checksum_s\":{},\"replicate_s\":{},"
                         "\"commit_s\":{},\"flush_s\":{},\"restart_s\":{},\"restart_persist_s\":{}}},",
                         json_number(*a.copy_gbps), json_string(copy_src), json_number(*a.checksum_gbps),
                         json_string(sum_src), json_number(a.link_gbps),
                         a.storage_gbps ? json_number(*a.storage_gbps) : "null", json_number(costs.stall_s),
                         json_number(checksum_s), json_number(replicate_s), json_number(costs.commit_s),
                         a.storage_gbps ? json_number(costs.flush_s) : "null", json_number(costs.restart_s),
                         a.storage_gbps ? json_number(costs.restart_persist_s) : "null");
        o += fmt::format("\"failures\":{{\"job_mtbf_s\":{},\"persist_fraction\":{}}},", json_number(fail.job_mtbf_s),
                         json_number(fail.persist_fraction));
        if (sched) {
            o += fmt::format(
                "\"schedule\":{{\"step_s\":{},\"steps\":{},\"interval_s\":{},\"optimum_s\":{},\"bound\":{},"
                "\"persist_every\":{},\"persist_bound\":{},\"save_overhead\":{},\"overhead\":{},"
                "\"lost_per_failure_s\":{},\"lost_per_persist_failure_s\":{}}}",
                json_number(*a.step_s), sched->steps, json_number(sched->interval_s), json_number(sched->optimum_s),
                json_string(sched->bound), sched->persist_every, json_string(sched->persist_bound),
                json_number(sched->save_overhead), json_number(sched->overhead), json_number(sched->lost_per_failure_s),
                json_number(sched->lost_per_persist_failure_s));
        } else {
            o += "\"schedule\":null";
        }
        o += "}";
        fmt::print("{}\n", o);
        return 0;
    }

    if (params) {
        fmt::print("model: {:.2f} B parameters{}\n", static_cast<double>(params) / 1e9,
                   tensors ? fmt::format(" in {} tensors", tensors) : "");
    } else {
        fmt::print("model: the shards of {} (every node assumed alike)\n", a.from_store);
    }
    fmt::print("job: {} node{} x {} rank{} = {} ranks, {} replica{} (checkpoint sharded evenly over the ranks)\n\n",
               a.nodes, a.nodes == 1 ? "" : "s", a.ranks_per_node, a.ranks_per_node == 1 ? "" : "s", ranks, a.replicas,
               a.replicas == 1 ? "" : "s");
    fmt::print("{:<20} {:<11} {:>12} {:>12} {:>12}\n", "checkpoint part", "dtype", "whole", "per rank", "per node");
    for (const auto &p : parts) {
        std::uint64_t r = per_rank(p.bytes, ranks);
        fmt::print("{:<20} {:<11} {:>12} {:>12} {:>12}\n", p.name, p.dtype, format_size(p.bytes), format_size(r),
                   format_size(r * a.ranks_per_node));
    }
    fmt::print("{:<20} {:<11} {:>12} {:>12} {:>12}\n\n", "shard (+ manifest)", "", format_size(node_bytes * a.nodes),
               format_size(shard_bytes), format_size(node_bytes));
    if (no_wait) {
        fmt::print("--ckpt-mem={}   saves never wait for the previous commit (3 versions of the node's shards",
                   ckpt_mem_arg(*no_wait));
        fmt::print("{})\n", a.replicas ? ", 2 of each copy kept for partners" : "");
    } else {
        fmt::print("(no store holds 3 versions: {})\n", no_wait.status().message());
    }
    fmt::print("--ckpt-mem={}   at least: a save may wait for the previous commit (2 versions)\n",
               ckpt_mem_arg(*at_least));
    if (flushing && *flushing) {
        fmt::print("--ckpt-mem={}   saves never wait behind a flush either (4 versions{}: a flush keeps the one it "
                   "writes)\n",
                   ckpt_mem_arg(**flushing), a.replicas ? ", 3 of each copy" : "");
    }
    fmt::print("\n");
    fmt::print("costs per save\n");
    fmt::print("  stall    {:>9}   {} per rank at {:.2f} GB/s ({}; ranks of a node copy at once)\n",
               seconds_text(costs.stall_s), format_size(shard_bytes), *a.copy_gbps, copy_src);
    fmt::print("  commit   {:>9}   checksum {} at {:.2f} GB/s ({}) + {} x {} replica{} over {:.1f} GB/s\n",
               seconds_text(costs.commit_s), seconds_text(checksum_s), *a.checksum_gbps, sum_src, format_size(node_bytes),
               a.replicas, a.replicas == 1 ? "" : "s", a.link_gbps);
    if (a.storage_gbps) {
        fmt::print("  flush    {:>9}   {} over {:.1f} GB/s of persistent storage\n", seconds_text(costs.flush_s),
                   format_size(static_cast<std::uint64_t>(total_bytes)), *a.storage_gbps);
    }
    fmt::print("  restart  {:>9}   {} to relaunch + a node's shards over the link\n\n", seconds_text(costs.restart_s),
               seconds_text(a.restart_s));
    if (!sched) {
        fmt::print("schedule: give --step-time (and --mtbf) for the interval tierckpt would choose\n");
        return 0;
    }
    fmt::print("schedule (job MTBF {}, {:.0f}% of failures need the persistent tier; tierckpt(7), SCHEDULE)\n",
               seconds_text(fail.job_mtbf_s), fail.persist_fraction * 100);
    if (sched->steps == 0) {
        fmt::print("  no failure memory recovers from is expected: save when you choose\n");
    } else {
        fmt::print("  save every {} step{} ({}; optimum {}, {})\n", sched->steps, sched->steps == 1 ? "" : "s",
                   seconds_text(sched->interval_s), seconds_text(sched->optimum_s),
                   sched->bound == "optimum" ? "rounded to whole steps" : "bounded by " + sched->bound);
    }
    if (sched->persist_every) {
        fmt::print("  flush every {} committed version{} ({})\n", sched->persist_every,
                   sched->persist_every == 1 ? "" : "s", sched->persist_bound);
    }
    if (sched->steps) {
        fmt::print("  expected overhead {:.3g}% ({:.3g}% saving), lost per failure {}", sched->overhead * 100,
                   sched->save_overhead * 100, seconds_text(sched->lost_per_failure_s));
        if (sched->persist_every && fail.persist_fraction > 0) {
            fmt::print(", per failure from the persistent tier {}", seconds_text(sched->lost_per_persist_failure_s));
        }
        fmt::print("\n");
    }
    return 0;
}

}  // namespace tck::cli
