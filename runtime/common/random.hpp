// Unpredictable numbers: memory keys, the job's transport token, run ids.
#pragma once

#include <cstdint>

#include "status.hpp"

namespace tck {

// 64 bits from the kernel's random source (getrandom; /dev/urandom where
// the kernel has no getrandom).
Result<std::uint64_t> random_u64();

}  // namespace tck
