// Parsing of what users and admins type: key=value argument lists,
// booleans, bounded integers, paths, durations, percentages and intervals.
//
// key=value argument lists, as plugstack.conf gives them to the SPANK
// plugin ("store_dir=/dev/shm/tierckpt log=info"). Every key must be
// known; a repeated key is an error, so a typo or a paste mistake in
// plugstack.conf is never silently ignored.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <utility>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "status.hpp"

namespace tck {

using KvArgs = std::map<std::string, std::string, std::less<>>;

Result<KvArgs> parse_kvargs(const std::vector<std::string_view> &args,
                            const std::set<std::string_view> &known_keys);

// "yes/no/true/false/1/0/on/off"
Result<bool> parse_bool(std::string_view key, std::string_view value);

// A decimal integer in [min, max]; `what` names it in the message
// ("--ckpt-replicas").
Result<std::uint64_t> parse_uint(std::string_view what, std::string_view text, std::uint64_t min,
                                 std::uint64_t max);

// An absolute path without "." or ".." components, empty components,
// control characters or a trailing slash, at most PATH_MAX bytes. Returns
// it unchanged. `what` names it in the message.
Result<std::string> parse_abs_path(std::string_view what, std::string_view text);

// True when `path` is `dir` or lies below it, component-wise
// ("/lustre/a" is under "/lustre", "/lustre2" is not). Both must have
// passed parse_abs_path.
bool path_is_under(std::string_view path, std::string_view dir);

// A non-negative number with an optional one-letter suffix from `suffixes`
// (each a multiplier; either case). `what` and `form` name it and its
// expected form in the message.
Result<double> parse_scaled(std::string_view text, const char *what,
                            std::initializer_list<std::pair<char, double>> suffixes, const char *form);

// "264d", "3h", "90m", "30s", "1.5": a duration in seconds (s, m, h, d;
// none: seconds). "inf" or "none": +infinity.
Result<double> parse_duration(std::string_view text);

// "2" or "2%": a share of time in (0, 1), given as a percentage above 0
// and below 100. `what` names it in the message ("--ckpt-max-overhead").
Result<double> parse_percent(std::string_view what, std::string_view text);

// When to checkpoint (--ckpt-interval, TIERCKPT_CKPT_INTERVAL): "auto"
// (the runtime chooses), a whole number of steps ("100", 1 to 10^9), or a
// duration with its unit ("90s", "10m", "1h"; above 0, at most 366 days):
// a bare number is always steps.
struct CkptInterval {
    enum class Kind { automatic, steps, duration };
    Kind kind = Kind::automatic;
    std::uint64_t steps = 0;  // Kind::steps
    double seconds = 0;       // Kind::duration
};
Result<CkptInterval> parse_ckpt_interval(std::string_view what, std::string_view text);

}  // namespace tck
