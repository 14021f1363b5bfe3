// Shared by the GPU tests and the GPU benchmark: where to put a node store
// of a given size (tmpfs when it has room, as on a training node), and a
// store path removed at the end.
#pragma once

#include <sys/statvfs.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

namespace tckgpu {

// A node store with room for two versions of every rank's payload, plus
// its header and slot table.
inline std::uint64_t store_bytes_for(std::uint64_t payload, int ranks = 1) {
    return 2 * static_cast<std::uint64_t>(ranks) * payload + (64ull << 20);
}

// /dev/shm when it has room for `bytes` (the node store's home), else
// $TMPDIR or /tmp (containers often give /dev/shm 64 MiB).
inline std::string store_dir(std::uint64_t bytes) {
    const char *tmp = std::getenv("TMPDIR");
    for (const char *d : {"/dev/shm", (tmp && *tmp) ? tmp : "/tmp"}) {
        struct statvfs s {};
        if (::statvfs(d, &s) == 0 && static_cast<std::uint64_t>(s.f_bavail) * s.f_frsize > bytes + (256ull << 20)) {
            return d;
        }
    }
    return "/tmp";
}

// A store path for one test. Under mpirun the ranks of a node share it:
// they pass the same `id` (rank 0's pid) and only the owner (rank 0)
// removes it, before the test and after.
struct TempStore {
    std::string path;
    bool owner;
    TempStore(std::uint64_t bytes, const std::string &tag, long id = ::getpid(), bool owner_ = true)
        : path(store_dir(bytes) + "/tck-gpu-" + tag + "-" + std::to_string(id)), owner(owner_) {
        if (owner) ::unlink(path.c_str());
    }
    ~TempStore() {
        if (owner) ::unlink(path.c_str());
    }
    TempStore(const TempStore &) = delete;
    TempStore &operator=(const TempStore &) = delete;
};

}  // namespace tckgpu
