// The C API edge: turns tck::Status values into codes and the thread's last
// error message. No exception may leave this file.
#include "config.h"

#include <string>

#include "api_edge.hpp"
#include "tierckpt/tierckpt.h"

namespace {
thread_local std::string t_last_error;
}

namespace tck {
tierckpt_status_t set_last_error(const Status &status) {
    t_last_error = status.message();
    return status.code();
}
}  // namespace tck

extern "C" {

const char *tierckpt_version(void) { return PACKAGE_VERSION; }

const char *tierckpt_status_string(tierckpt_status_t status) {
    switch (status) {
    case TIERCKPT_OK: return "success";
    case TIERCKPT_ERR_INVALID: return "invalid argument";
    case TIERCKPT_ERR_NO_MEMORY: return "out of memory";
    case TIERCKPT_ERR_IO: return "I/O error";
    case TIERCKPT_ERR_NOT_FOUND: return "not found";
    case TIERCKPT_ERR_CORRUPT: return "data corrupt";
    case TIERCKPT_ERR_PEER: return "peer failed";
    case TIERCKPT_ERR_TIMEOUT: return "timed out";
    case TIERCKPT_ERR_UNSUPPORTED: return "not supported";
    case TIERCKPT_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

const char *tierckpt_last_error(void) { return t_last_error.c_str(); }

const char *tierckpt_features(void) {
    static const std::string features = [] {
        std::string f;
        auto add = [&f](const char *name) { f += f.empty() ? name : std::string(" ") + name; };
#ifdef TCK_HAVE_UCX
        add("ucx");
#endif
#ifdef TCK_HAVE_OFI
        add("ofi");
#endif
#ifdef TCK_HAVE_CUDA
        add("cuda");
#endif
        (void)add;
        return f;
    }();
    return features.c_str();
}

}  // extern "C"
