#include "log.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace tck::log {
namespace {

void stderr_sink(Level lvl, std::string_view line) {
    std::string out = fmt::format("tierckpt: {}: {}\n", level_name(lvl), line);
    std::fwrite(out.data(), 1, out.size(), stderr);
}

Level level_from_env() {
    Level lvl = Level::warn;
    if (const char *env = std::getenv("TIERCKPT_LOG")) {
        if (!parse_level(env, lvl)) lvl = Level::warn;
    }
    return lvl;
}

std::atomic<Sink> g_sink{&stderr_sink};
std::atomic<int> g_level{-1};  // -1: not read from the environment yet

}  // namespace

void set_sink(Sink sink) { g_sink.store(sink ? sink : &stderr_sink); }

void set_level(Level lvl) { g_level.store(static_cast<int>(lvl)); }

Level level() {
    int v = g_level.load(std::memory_order_relaxed);
    if (v < 0) {
        v = static_cast<int>(level_from_env());
        g_level.store(v);
    }
    return static_cast<Level>(v);
}

bool parse_level(std::string_view name, Level &out) {
    static constexpr std::pair<std::string_view, Level> names[] = {
        {"error", Level::error}, {"warn", Level::warn}, {"info", Level::info}, {"debug", Level::debug}};
    for (const auto &[n, l] : names) {
        if (n == name) {
            out = l;
            return true;
        }
    }
    return false;
}

const char *level_name(Level lvl) {
    switch (lvl) {
    case Level::error: return "error";
    case Level::warn: return "warning";
    case Level::info: return "info";
    case Level::debug: return "debug";
    }
    return "?";
}

void write(Level lvl, std::string_view message) { g_sink.load()(lvl, message); }

}  // namespace tck::log
