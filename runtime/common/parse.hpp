// Parsing of what users and admins type: key=value argument lists,
// booleans, bounded integers and paths.
//
// key=value argument lists, as plugstack.conf gives them to the SPANK
// plugin ("store_dir=/dev/shm/tierckpt log=info"). Every key must be
// known; a repeated key is an error, so a typo or a paste mistake in
// plugstack.conf is never silently ignored.
#pragma once

#include <cstdint>
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

}  // namespace tck
