#include "transport.hpp"

#include "config.h"

#ifdef TCK_HAVE_UCX
#include "ucx.hpp"
#endif
#ifdef TCK_HAVE_OFI
#include "ofi.hpp"
#endif

namespace tck {

const char *transports_built() {
#if defined(TCK_HAVE_UCX) && defined(TCK_HAVE_OFI)
    return "ucx ofi";
#elif defined(TCK_HAVE_UCX)
    return "ucx";
#elif defined(TCK_HAVE_OFI)
    return "ofi";
#else
    return "";
#endif
}

Result<std::unique_ptr<Transport>> make_transport(const std::string &kind) {
    if (kind != "ucx" && kind != "ofi" && kind != "auto") {
        return error(TIERCKPT_ERR_INVALID, "transport '{}': expected ucx, ofi or auto", kind);
    }
    Status last = error(TIERCKPT_ERR_UNSUPPORTED, "transport '{}' is not built into this libtierckpt (built: {})", kind,
                        *transports_built() ? transports_built() : "none");
#ifdef TCK_HAVE_UCX
    if (kind == "ucx" || kind == "auto") {
        auto t = make_ucx_transport();
        if (t || kind == "ucx") return t;
        last = t.status();
    }
#endif
#ifdef TCK_HAVE_OFI
    if (kind == "ofi" || kind == "auto") {
        auto t = make_ofi_transport();
        if (t || kind == "ofi") return t;
        last = t.status();
    }
#endif
    return last;
}

}  // namespace tck
