#include "config.h"

#include "cuda_stage.hpp"

#include <algorithm>
#include <cstring>

#ifdef TCK_HAVE_CUDA
#include <cuda_runtime.h>
#endif

namespace tck::cuda {

std::vector<Piece> plan_pieces(std::uint64_t bytes, std::uint64_t piece) {
    std::vector<Piece> out;
    if (piece == 0) return out;
    out.reserve(static_cast<std::size_t>((bytes + piece - 1) / piece));
    for (std::uint64_t off = 0; off < bytes; off += piece) out.push_back({off, std::min(piece, bytes - off)});
    return out;
}

const char *path_name(Path p) {
    switch (p) {
    case Path::host: return "host";
    case Path::direct: return "cuda-direct";
    case Path::bounce: return "cuda-bounce";
    }
    return "?";
}

Path choose_path(bool any_device_region, bool store_registered) {
    if (!any_device_region) return Path::host;
    return store_registered ? Path::direct : Path::bounce;
}

#ifndef TCK_HAVE_CUDA

bool built_with_cuda() { return false; }
PtrInfo classify(const void *) { return {}; }
int device_count(std::string *why) {
    if (why) *why = "libtierckpt was built without CUDA (configure --with-cuda)";
    return 0;
}

struct Stager::Impl {
    std::string reason = "libtierckpt was built without CUDA (configure --with-cuda)";
};
Stager::Stager() : impl_(std::make_unique<Impl>()) {}
Stager::~Stager() = default;
void Stager::register_store(void *, std::size_t, bool) {}
bool Stager::store_registered() const { return false; }
const std::string &Stager::fallback_reason() const { return impl_->reason; }
static Status no_cuda() {
    return error(TIERCKPT_ERR_UNSUPPORTED, "device memory: libtierckpt was built without CUDA (configure --with-cuda)");
}
Status Stager::quiesce(int) { return no_cuda(); }
Status Stager::to_host(void *, const void *, std::size_t, int) { return no_cuda(); }
Status Stager::to_device(void *, const void *, std::size_t, int) { return no_cuda(); }
bool Stager::has_pending() const { return false; }
Status Stager::finish(const Progress &) { return Status::ok(); }

#else  // TCK_HAVE_CUDA

namespace {

Status cuda_error(const char *what, cudaError_t rc) {
    (void)cudaGetLastError();  // not sticky: do not let it surface in the application's next call
    return error(TIERCKPT_ERR_IO, "{}: {} ({})", what, cudaGetErrorString(rc), cudaGetErrorName(rc));
}

// Makes `device` current for the calling thread, and the previous one
// current again at the end: the application's thread must find its own.
class DeviceGuard {
public:
    explicit DeviceGuard(int device) {
        if (cudaGetDevice(&prev_) != cudaSuccess) {
            (void)cudaGetLastError();
            prev_ = -1;
        }
        if (prev_ != device) {
            rc_ = cudaSetDevice(device);
            switched_ = rc_ == cudaSuccess;
        }
    }
    ~DeviceGuard() {
        if (switched_ && prev_ >= 0) (void)cudaSetDevice(prev_);
    }
    DeviceGuard(const DeviceGuard &) = delete;
    DeviceGuard &operator=(const DeviceGuard &) = delete;
    // The error of making `device` current, if it failed.
    Status status(int device) const {
        if (rc_ == cudaSuccess) return Status::ok();
        return cuda_error(("cudaSetDevice(" + std::to_string(device) + ")").c_str(), rc_);
    }

private:
    int prev_ = -1;
    bool switched_ = false;
    cudaError_t rc_ = cudaSuccess;
};

}  // namespace

bool built_with_cuda() { return true; }

int device_count(std::string *why) {
    int n = 0;
    cudaError_t rc = cudaGetDeviceCount(&n);
    if (rc != cudaSuccess) {
        (void)cudaGetLastError();
        if (why) {
            *why = rc == cudaErrorInsufficientDriver
                       ? std::string("no CUDA driver, or one older than this CUDA runtime (cudaErrorInsufficientDriver)")
                       : std::string("no CUDA device: ") + cudaGetErrorString(rc) + " (" + cudaGetErrorName(rc) + ")";
        }
        return 0;
    }
    if (n == 0 && why) *why = "no CUDA device";
    return n;
}

PtrInfo classify(const void *p) {
    PtrInfo info;
    if (!p) return info;
    cudaPointerAttributes attr{};
    cudaError_t rc = cudaPointerGetAttributes(&attr, p);
    if (rc != cudaSuccess) {
        // cudaErrorNoDevice, cudaErrorInsufficientDriver, or (older CUDA)
        // cudaErrorInvalidValue for memory CUDA does not know: host memory.
        (void)cudaGetLastError();
        return info;
    }
    if (attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged) {
        info.device = true;
        info.device_id = attr.device;
    }
    return info;
}

struct Stager::Impl {
    struct Dev {
        int id = -1;
        cudaStream_t stream = nullptr;
        cudaEvent_t ev[2] = {nullptr, nullptr};  // the bounce buffers'
        std::vector<cudaEvent_t> marks;          // one per queued piece, reused
        std::size_t used = 0;                    // marks in use since the last finish()
    };
    // A queued piece: its device, its event there, the end of its destination.
    struct Queued {
        std::size_t dev;
        std::size_t mark;
        const void *end;
    };
    std::vector<Dev> devs;
    std::vector<Queued> queued;
    void *reg_base = nullptr;
    std::size_t reg_bytes = 0;
    bool registered = false;
    bool register_tried = false;
    std::string reason;
    void *bounce[2] = {nullptr, nullptr};

    ~Impl() {
        for (auto &d : devs) {
            DeviceGuard g(d.id);
            if (d.stream) (void)cudaStreamSynchronize(d.stream);
            for (auto &e : d.ev) {
                if (e) (void)cudaEventDestroy(e);
            }
            for (auto &e : d.marks) (void)cudaEventDestroy(e);
            if (d.stream) (void)cudaStreamDestroy(d.stream);
        }
        for (auto &b : bounce) {
            if (b) (void)cudaFreeHost(b);
        }
        if (registered) (void)cudaHostUnregister(reg_base);
        (void)cudaGetLastError();
    }

    bool in_registered(const void *p, std::size_t n) const {
        if (!registered) return false;
        auto a = reinterpret_cast<std::uintptr_t>(p), b = reinterpret_cast<std::uintptr_t>(reg_base);
        return a >= b && a - b <= reg_bytes && n <= reg_bytes - (a - b);
    }

    // The stream and events of `device`, made on first use. The caller
    // holds a DeviceGuard for it.
    Result<Dev *> dev(int device) {
        for (auto &d : devs) {
            if (d.id == device) return &d;
        }
        Dev d;
        d.id = device;
        cudaError_t rc = cudaStreamCreateWithFlags(&d.stream, cudaStreamNonBlocking);
        if (rc != cudaSuccess) return cuda_error("cudaStreamCreateWithFlags", rc);
        for (auto &e : d.ev) {
            rc = cudaEventCreateWithFlags(&e, cudaEventDisableTiming);
            if (rc != cudaSuccess) {
                Status st = cuda_error("cudaEventCreateWithFlags", rc);
                for (auto &e2 : d.ev) {
                    if (e2) (void)cudaEventDestroy(e2);
                }
                (void)cudaStreamDestroy(d.stream);
                return st;
            }
        }
        devs.push_back(d);
        return &devs.back();
    }

    // The stream and events of `device`, which g (the caller's) made
    // current.
    Result<Dev *> current(const DeviceGuard &g, int device) {
        if (Status st = g.status(device); !st) return st;
        return dev(device);
    }

    // Records an event after the piece just queued on device d's stream.
    Status mark(std::size_t d, const void *end) {
        Dev &dv = devs[d];
        if (dv.used == dv.marks.size()) {
            cudaEvent_t e = nullptr;
            cudaError_t rc = cudaEventCreateWithFlags(&e, cudaEventDisableTiming);
            if (rc != cudaSuccess) return cuda_error("cudaEventCreateWithFlags", rc);
            dv.marks.push_back(e);
        }
        cudaError_t rc = cudaEventRecord(dv.marks[dv.used], dv.stream);
        if (rc != cudaSuccess) return cuda_error("cudaEventRecord", rc);
        queued.push_back({d, dv.used++, end});
        return Status::ok();
    }

    Status bounce_buffers() {
        for (auto &b : bounce) {
            if (b) continue;
            cudaError_t rc = cudaHostAlloc(&b, kPieceBytes, cudaHostAllocPortable);
            if (rc != cudaSuccess) {
                b = nullptr;
                return cuda_error("cudaHostAlloc (bounce buffers, 2 x 64 MiB pinned)", rc);
            }
        }
        return Status::ok();
    }
};

Stager::Stager() : impl_(std::make_unique<Impl>()) {}
Stager::~Stager() = default;

void Stager::register_store(void *base, std::size_t bytes, bool force_bounce) {
    Impl &m = *impl_;
    if (m.register_tried) return;
    m.register_tried = true;
    if (force_bounce) {
        m.reason = "TIERCKPT_TEST_CUDA_BOUNCE is set";
        return;
    }
    cudaError_t rc = cudaHostRegister(base, bytes, cudaHostRegisterPortable);
    if (rc != cudaSuccess) {
        (void)cudaGetLastError();
        m.reason = std::string("cudaHostRegister of the node store (") + std::to_string(bytes >> 20) +
                   " MiB) failed: " + cudaGetErrorString(rc) + " (" + cudaGetErrorName(rc) + ")";
        return;
    }
    m.registered = true;
    m.reg_base = base;
    m.reg_bytes = bytes;
}

bool Stager::store_registered() const { return impl_->registered; }
const std::string &Stager::fallback_reason() const { return impl_->reason; }

Status Stager::quiesce(int device) {
    DeviceGuard g(device);
    if (Status st = g.status(device); !st) return st;
    cudaError_t rc = cudaDeviceSynchronize();
    if (rc != cudaSuccess) return cuda_error("cudaDeviceSynchronize (the application's work on the device)", rc);
    return Status::ok();
}

Status Stager::to_host(void *dst, const void *src, std::size_t bytes, int device) {
    Impl &m = *impl_;
    if (bytes == 0) return Status::ok();
    DeviceGuard g(device);
    auto d = m.current(g, device);
    if (!d) return d.status();
    cudaStream_t s = (*d)->stream;
    auto *out = static_cast<std::uint8_t *>(dst);
    const auto *in = static_cast<const std::uint8_t *>(src);
    auto pieces = plan_pieces(bytes, kPieceBytes);
    if (m.in_registered(dst, bytes)) {
        // Straight into the registered store; finish() waits, piece by piece.
        auto di = static_cast<std::size_t>(*d - m.devs.data());
        for (const auto &p : pieces) {
            cudaError_t rc = cudaMemcpyAsync(out + p.offset, in + p.offset, p.bytes, cudaMemcpyDeviceToHost, s);
            if (rc != cudaSuccess) return cuda_error("cudaMemcpyAsync (device to node store)", rc);
            if (Status st = m.mark(di, out + p.offset + p.bytes); !st) return st;
        }
        return Status::ok();
    }
    if (Status st = m.bounce_buffers(); !st) return st;
    // The GPU fills one bounce buffer while the CPU empties the other.
    cudaEvent_t *ev = (*d)->ev;
    for (std::size_t k = 0; k <= pieces.size(); ++k) {
        if (k < pieces.size()) {
            const Piece &p = pieces[k];
            cudaError_t rc = cudaMemcpyAsync(m.bounce[k % 2], in + p.offset, p.bytes, cudaMemcpyDeviceToHost, s);
            if (rc == cudaSuccess) rc = cudaEventRecord(ev[k % 2], s);
            if (rc != cudaSuccess) {
                (void)cudaStreamSynchronize(s);
                return cuda_error("cudaMemcpyAsync (device to bounce buffer)", rc);
            }
        }
        if (k > 0) {
            const Piece &p = pieces[k - 1];
            cudaError_t rc = cudaEventSynchronize(ev[(k - 1) % 2]);
            if (rc != cudaSuccess) {
                (void)cudaStreamSynchronize(s);
                return cuda_error("copy from the device (to a bounce buffer)", rc);
            }
            std::memcpy(out + p.offset, m.bounce[(k - 1) % 2], p.bytes);
        }
    }
    return Status::ok();
}

Status Stager::to_device(void *dst, const void *src, std::size_t bytes, int device) {
    Impl &m = *impl_;
    if (bytes == 0) return Status::ok();
    DeviceGuard g(device);
    auto d = m.current(g, device);
    if (!d) return d.status();
    cudaStream_t s = (*d)->stream;
    auto *out = static_cast<std::uint8_t *>(dst);
    const auto *in = static_cast<const std::uint8_t *>(src);
    auto pieces = plan_pieces(bytes, kPieceBytes);
    if (m.in_registered(src, bytes)) {
        for (const auto &p : pieces) {
            cudaError_t rc = cudaMemcpyAsync(out + p.offset, in + p.offset, p.bytes, cudaMemcpyHostToDevice, s);
            if (rc != cudaSuccess) return cuda_error("cudaMemcpyAsync (node store to device)", rc);
        }
        return Status::ok();
    }
    if (Status st = m.bounce_buffers(); !st) return st;
    // The CPU fills one bounce buffer while the GPU empties the other.
    cudaEvent_t *ev = (*d)->ev;
    for (std::size_t k = 0; k < pieces.size(); ++k) {
        const Piece &p = pieces[k];
        cudaError_t rc = cudaSuccess;
        if (k >= 2) rc = cudaEventSynchronize(ev[k % 2]);  // piece k-2 has left this buffer
        if (rc == cudaSuccess) {
            std::memcpy(m.bounce[k % 2], in + p.offset, p.bytes);
            rc = cudaMemcpyAsync(out + p.offset, m.bounce[k % 2], p.bytes, cudaMemcpyHostToDevice, s);
        }
        if (rc == cudaSuccess) rc = cudaEventRecord(ev[k % 2], s);
        if (rc != cudaSuccess) {
            (void)cudaStreamSynchronize(s);
            return cuda_error("cudaMemcpyAsync (bounce buffer to device)", rc);
        }
    }
    cudaError_t rc = cudaStreamSynchronize(s);
    if (rc != cudaSuccess) return cuda_error("copy to the device (from a bounce buffer)", rc);
    return Status::ok();
}

bool Stager::has_pending() const { return !impl_->queued.empty(); }

Status Stager::finish(const Progress &progress) {
    Impl &m = *impl_;
    Status first;
    for (const auto &q : m.queued) {
        if (!first) break;
        Impl::Dev &d = m.devs[q.dev];
        DeviceGuard g(d.id);
        cudaError_t rc = cudaEventSynchronize(d.marks[q.mark]);
        if (rc != cudaSuccess) {
            first = cuda_error("copy from the device to the node store", rc);
            break;
        }
        if (progress) progress(q.end);
    }
    m.queued.clear();
    for (auto &d : m.devs) d.used = 0;
    for (auto &d : m.devs) {
        DeviceGuard g(d.id);
        cudaError_t rc = cudaStreamSynchronize(d.stream);
        if (rc != cudaSuccess && first) first = cuda_error("copy between the device and the node store", rc);
    }
    return first;
}

#endif  // TCK_HAVE_CUDA

}  // namespace tck::cuda
