#include "run_report.hpp"

#include <fmt/format.h>

#include <regex>

namespace tck::report {

std::string format_restore(const Restore &r) {
    const RestoreBreakdown &p = r.parts;
    return fmt::format("tierckpt-report restore rank={} node={} version={} source={} bytes={} ms={:.1f} via={} "
                       "inventory_ms={:.1f} plan_ms={:.1f} move_ms={:.1f} verify_ms={:.1f} copy_ms={:.1f} "
                       "agree_ms={:.1f} saved_world={} local_bytes={} peer_bytes={} persistent_bytes={}",
                       r.rank, r.node, r.version, r.source, r.bytes, r.ms, r.via, p.inventory_ms, p.plan_ms,
                       p.move_ms, p.verify_ms, p.copy_ms, p.agree_ms, p.saved_world, p.local_bytes, p.peer_bytes,
                       p.persistent_bytes);
}

std::optional<Restore> parse_restore(const std::string &line) {
    static const std::regex re(
        R"(tierckpt-report restore rank=(\d+) node=(\S+) version=(\d+) source=(\w+) bytes=(\d+) ms=([0-9.]+) via=(\w+))");
    std::smatch m;
    if (!std::regex_search(line, m, re)) return std::nullopt;
    try {
        Restore r;
        r.rank = std::stoi(m[1]);
        r.node = m[2];
        r.version = std::stoull(m[3]);
        r.source = m[4];
        r.bytes = std::stoull(m[5]);
        r.ms = std::stod(m[6]);
        r.via = m[7];
        // The breakdown, field by field (a line without it leaves zeros).
        const std::string rest = m.suffix();
        const std::pair<const char *, double *> parts[] = {
            {"inventory_ms", &r.parts.inventory_ms}, {"plan_ms", &r.parts.plan_ms},
            {"move_ms", &r.parts.move_ms},           {"verify_ms", &r.parts.verify_ms},
            {"copy_ms", &r.parts.copy_ms},           {"agree_ms", &r.parts.agree_ms},
        };
        for (const auto &[key, field] : parts) {
            const std::regex kv(std::string(" ") + key + "=([0-9.]+)");
            std::smatch v;
            if (std::regex_search(rest, v, kv)) *field = std::stod(v[1]);
        }
        const std::pair<const char *, std::uint64_t *> counts[] = {
            {"saved_world", &r.parts.saved_world},
            {"local_bytes", &r.parts.local_bytes},
            {"peer_bytes", &r.parts.peer_bytes},
            {"persistent_bytes", &r.parts.persistent_bytes},
        };
        for (const auto &[key, field] : counts) {
            const std::regex kv(std::string(" ") + key + "=([0-9]+)");
            std::smatch v;
            if (std::regex_search(rest, v, kv)) *field = std::stoull(v[1]);
        }
        return r;
    } catch (const std::exception &) {  // out of range: not a line the runtime wrote
        return std::nullopt;
    }
}

namespace {
constexpr std::string_view kSchedulePrefix = "tierckpt-report schedule ";
}

std::string format_schedule(const std::string &fields) { return std::string(kSchedulePrefix) + fields; }

std::optional<std::string> parse_schedule(const std::string &line) {
    // Anywhere in the line, as srun --label prefixes it ("0: ").
    const std::size_t at = line.find(kSchedulePrefix);
    if (at == std::string::npos) return std::nullopt;
    std::string fields = line.substr(at + kSchedulePrefix.size(), 1024);
    while (!fields.empty() && (fields.back() == '\n' || fields.back() == '\r')) fields.pop_back();
    return fields;
}

std::string format_commit(std::uint64_t version) { return fmt::format("tierckpt-report commit version={}", version); }

std::optional<std::uint64_t> parse_commit(const std::string &line) {
    static const std::regex re(R"(tierckpt-report commit version=(\d+))");
    std::smatch m;
    if (!std::regex_search(line, m, re)) return std::nullopt;
    try {
        return std::stoull(m[1]);
    } catch (const std::exception &) {
        return std::nullopt;
    }
}

}  // namespace tck::report
