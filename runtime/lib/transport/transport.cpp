#include "transport.hpp"

#include "config.h"

#ifdef TCK_HAVE_UCX
#include "ucx.hpp"
#endif

namespace tck {

const char *transports_built() {
#ifdef TCK_HAVE_UCX
    return "ucx";
#else
    return "";
#endif
}

Result<std::unique_ptr<Transport>> make_transport(const std::string &kind) {
    if (kind != "ucx" && kind != "ofi" && kind != "auto") {
        return error(TIERCKPT_ERR_INVALID, "transport '{}': expected ucx, ofi or auto", kind);
    }
#ifdef TCK_HAVE_UCX
    if (kind == "ucx" || kind == "auto") return make_ucx_transport();
#endif
    return error(TIERCKPT_ERR_UNSUPPORTED, "transport '{}' is not built into this libtierckpt (built: {})", kind,
                 *transports_built() ? transports_built() : "none");
}

}  // namespace tck
