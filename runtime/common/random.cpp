#include "random.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "unique_fd.hpp"

namespace tck {

Result<std::uint64_t> random_u64() {
    std::uint64_t v = 0;
    ssize_t n;
    while ((n = ::getrandom(&v, sizeof v, 0)) < 0 && errno == EINTR) {
    }
    if (n == static_cast<ssize_t>(sizeof v)) return v;
    if (n < 0 && errno != ENOSYS) return error(TIERCKPT_ERR_IO, "getrandom: {}", std::strerror(errno));
    UniqueFd fd(::open("/dev/urandom", O_RDONLY | O_CLOEXEC));
    if (!fd || ::read(fd.get(), &v, sizeof v) != static_cast<ssize_t>(sizeof v)) {
        return error(TIERCKPT_ERR_IO, "reading /dev/urandom: {}", std::strerror(errno));
    }
    return v;
}

}  // namespace tck
