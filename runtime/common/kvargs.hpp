// key=value argument lists, as plugstack.conf gives them to the SPANK
// plugin ("store_dir=/dev/shm/tierckpt log=info"). Every key must be
// known; a repeated key is an error, so a typo or a paste mistake in
// plugstack.conf is never silently ignored.
#pragma once

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

}  // namespace tck
