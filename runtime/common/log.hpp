// The one logging facility: a fixed "tierckpt" prefix, levels, and a sink
// that the host process may replace (the SPANK plugin routes lines to
// slurm_error/slurm_info so they land in slurmd's log).
#pragma once

#include <string_view>
#include <utility>

#include <fmt/format.h>

namespace tck::log {

enum class Level { error = 0, warn = 1, info = 2, debug = 3 };

using Sink = void (*)(Level, std::string_view line);

// Default: stderr, level from TIERCKPT_LOG (error|warn|info|debug; default
// warn).
void set_sink(Sink sink);
void set_level(Level level);
Level level();
// Parses a level name; returns false for an unknown name.
bool parse_level(std::string_view name, Level &out);
const char *level_name(Level level);

void write(Level level, std::string_view message);

template <typename... Args>
void error(fmt::format_string<Args...> f, Args &&...args) {
    write(Level::error, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void warn(fmt::format_string<Args...> f, Args &&...args) {
    if (level() >= Level::warn) write(Level::warn, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void info(fmt::format_string<Args...> f, Args &&...args) {
    if (level() >= Level::info) write(Level::info, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void debug(fmt::format_string<Args...> f, Args &&...args) {
    if (level() >= Level::debug) write(Level::debug, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace tck::log
