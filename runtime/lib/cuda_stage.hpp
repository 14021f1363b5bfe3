// The GPU tier: CUDA device memory to and from the node store.
//
// Device regions are copied with cudaMemcpyAsync on a stream of our own
// per device, in pieces of kPieceBytes. Two paths:
//   direct: the store mapping is registered with CUDA (cudaHostRegister),
//           so the DMA engine writes straight into it (PCIe speed);
//   bounce: registering failed (a tmpfs/hugetlbfs mapping the driver
//           refuses, the locked-memory limit, no device): pieces go through
//           two pinned bounce buffers, the CPU copying one into the store
//           while the GPU fills the other (memcpy speed).
//
// Everything here compiles without CUDA (TCK_HAVE_CUDA unset): classify()
// then says "host" for every pointer and the Stager refuses to copy. A
// CUDA build on a machine without a GPU or driver behaves the same: every
// pointer is host memory, and nothing is printed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.hpp"

namespace tck::cuda {

// One cudaMemcpyAsync; also the size of a bounce buffer.
inline constexpr std::uint64_t kPieceBytes = 64ull << 20;

// True when libtierckpt was built with the CUDA tier.
bool built_with_cuda();

// [offset, offset + bytes) pieces of at most `piece` bytes covering
// `bytes` (none for 0 bytes). piece must be > 0.
struct Piece {
    std::uint64_t offset;
    std::uint64_t bytes;
};
std::vector<Piece> plan_pieces(std::uint64_t bytes, std::uint64_t piece);

enum class Path { host, direct, bounce };
// "host" (no device region), "cuda-direct", "cuda-bounce".
const char *path_name(Path p);
// The path device regions take.
Path choose_path(bool any_device_region, bool store_registered);

// Where a pointer lives. device_id is the CUDA device of device (or
// managed) memory; -1 for host memory.
struct PtrInfo {
    bool device = false;
    int device_id = -1;
};
// Never fails: without the CUDA tier, a driver or a device, or for memory
// CUDA does not know (malloc, mmap) and pinned host memory, the answer is
// host memory. Clears the CUDA error it may leave behind.
PtrInfo classify(const void *p);

// Number of CUDA devices; 0 without CUDA, a driver or a device. Sets
// *why to the reason when there are none (may be null).
int device_count(std::string *why);

// Copies between device memory and host memory (the node store, or a
// buffer restore received from another node). One per checkpointer; used
// from the application's thread only. Holds its streams, bounce buffers
// and the store's CUDA registration; destroy it before unmapping the store.
class Stager {
public:
    Stager();
    ~Stager();
    Stager(const Stager &) = delete;
    Stager &operator=(const Stager &) = delete;

    // Registers [base, base + bytes) with CUDA (once). On failure (or with
    // force_bounce, a test hook) copies go through bounce buffers and
    // fallback_reason() says why.
    void register_store(void *base, std::size_t bytes, bool force_bounce);
    bool store_registered() const;
    const std::string &fallback_reason() const;

    // Waits for the work the application queued on the device (its kernels
    // writing the state), so the copy sees what it computed.
    Status quiesce(int device);
    // Device to host. With the direct path the copy is queued, piece by
    // piece, each followed by an event, and finish() waits for it; with
    // bounce buffers it is done on return.
    Status to_host(void *dst, const void *src, std::size_t bytes, int device);
    // Host to device, the same way.
    Status to_device(void *dst, const void *src, std::size_t bytes, int device);
    // Copies queued and not yet waited for by finish().
    bool has_pending() const;
    // Called by finish() as each queued piece lands, in the order queued,
    // with the end of its destination.
    using Progress = std::function<void(const void *end)>;
    // Waits for every queued copy; the first error of any of them.
    Status finish(const Progress &progress = {});

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace tck::cuda
