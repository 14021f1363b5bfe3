// Helpers for the C API edge (api_c.cpp and later API files).
#pragma once

#include "common/status.hpp"

namespace tck {
// Records status's message as the thread's last error; returns its code.
tierckpt_status_t set_last_error(const Status &status);
}  // namespace tck
