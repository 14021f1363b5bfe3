#include "run_report.hpp"

#include <fmt/format.h>

#include <regex>

namespace tck::report {

std::string format_restore(const Restore &r) {
    return fmt::format("tierckpt-report restore rank={} node={} version={} source={} bytes={} ms={:.1f} via={}", r.rank,
                       r.node, r.version, r.source, r.bytes, r.ms, r.via);
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
        return r;
    } catch (const std::exception &) {  // out of range: not a line the runtime wrote
        return std::nullopt;
    }
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
