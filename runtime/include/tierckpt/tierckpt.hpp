// tierckpt: C++ API over the C API (tierckpt.h). Errors are exceptions of
// type tierckpt::Error carrying the status code and the library's message.
#pragma once

#include <stdexcept>
#include <string>

#include "tierckpt/tierckpt.h"

namespace tierckpt {

class Error : public std::runtime_error {
public:
    Error(tierckpt_status_t code, const std::string &message)
        : std::runtime_error(message), code_(code) {}
    tierckpt_status_t code() const noexcept { return code_; }

private:
    tierckpt_status_t code_;
};

// Throws Error for a failed status, with the calling thread's last message.
inline void check(tierckpt_status_t status) {
    if (status != TIERCKPT_OK) {
        const char *msg = tierckpt_last_error();
        throw Error(status, (msg && *msg) ? msg : tierckpt_status_string(status));
    }
}

inline std::string version() { return tierckpt_version(); }
inline std::string features() { return tierckpt_features(); }

}  // namespace tierckpt
