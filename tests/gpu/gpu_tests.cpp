// The GPU tier's tests, against the real library and the real GPU. Each
// case prints one line that tests/run counts:
//   :test-result: PASS|FAIL|SKIP name[: reason]
// Without the CUDA tier, or without a device, the device cases are SKIPs
// that say why; the host case runs everywhere. Run on a GPU machine by
// tests/gpu/run-on-device.sh, once alone and once as two ranks under
// mpirun: the ranks share one node store (the store path is rank 0's),
// each saving and restoring its own regions, with bytes of its own.
#include "config.h"

#include <mpi.h>

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#ifdef TCK_HAVE_CUDA
#include <cuda_runtime.h>
#endif

#include "lib/cuda_stage.hpp"
#include "gpu_common.hpp"
#include "tierckpt/tierckpt.hpp"

namespace {

int g_failed = 0;
int g_rank = 0, g_world = 1;
long g_store_id = 0;  // rank 0's pid: names the store the ranks share

struct Failure {
    std::string what;
};

void expect(bool ok, const std::string &what) {
    if (!ok) throw Failure{what};
}

// Details worth a line in the log, from rank 0 (the others do the same).
__attribute__((format(printf, 1, 2))) void note(const char *fmt, ...) {
    if (g_rank != 0) return;
    va_list ap;
    va_start(ap, fmt);
    std::vprintf(fmt, ap);
    va_end(ap);
}

// One result line per case, from rank 0: a case passes when it passed on
// every rank; a rank that failed says why.
void run_case(const std::string &name, const std::function<void()> &body, const std::string &skip = "") {
    if (!skip.empty()) {
        note(":test-result: SKIP %s: %s\n", name.c_str(), skip.c_str());
        std::fflush(stdout);
        return;
    }
    std::string failure;
    try {
        body();
    } catch (const Failure &f) {
        failure = f.what;
    } catch (const std::exception &e) {
        failure = std::string("exception: ") + e.what();
    }
    if (!failure.empty()) {
        std::printf("%s%s: %s\n", g_world > 1 ? ("rank " + std::to_string(g_rank) + ": ").c_str() : "", name.c_str(),
                    failure.c_str());
        std::fflush(stdout);
    }
    int ok = failure.empty() ? 1 : 0, all = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
    if (!all) ++g_failed;
    note(":test-result: %s %s%s\n", all ? "PASS" : "FAIL", name.c_str(),
         g_world > 1 ? (" (" + std::to_string(g_world) + " ranks, one node store)").c_str() : "");
    std::fflush(stdout);
}

// Bytes that differ with the offset and the seed, so a shifted, swapped
// or partial copy shows.
std::vector<unsigned char> pattern(std::size_t n, unsigned seed) {
    std::vector<unsigned char> v(n);
    std::uint32_t x = 2463534242u ^ seed ^ (static_cast<std::uint32_t>(g_rank) * 0x9e3779b9u);  // each rank its own
    for (std::size_t i = 0; i < n; ++i) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v[i] = static_cast<unsigned char>(x);
    }
    return v;
}

std::uint64_t store_bytes_for(std::uint64_t payload) { return tckgpu::store_bytes_for(payload, g_world); }

tckgpu::TempStore shared_store(std::uint64_t bytes, const std::string &tag) {
    return tckgpu::TempStore(bytes, tag, g_store_id, g_rank == 0);
}

void host_case() {
    const std::size_t n = (3u << 20) + 5;
    auto a = pattern(n, 1), b = pattern(4097, 2);
    auto a0 = a, b0 = b;
    tckgpu::TempStore store = shared_store(store_bytes_for(n + 4097), "host");
    tierckpt::Options o;
    o.set("store", store.path).set("store_bytes", std::to_string(store_bytes_for(n + 4097)));
    tierckpt::Checkpointer ck(&o);
    ck.add("a", a.data(), a.size());
    ck.add("b", b.data(), b.size());
    expect(ck.stage_path() == "host", "stage path " + ck.stage_path() + ", expected host");
    ck.save(1);
    ck.wait();
    std::memset(a.data(), 0, a.size());
    std::memset(b.data(), 0xff, b.size());
    auto v = ck.restore();
    expect(v && *v == 1, "restore found no version 1");
    expect(a == a0 && b == b0, "restored host regions differ from what was saved");
    ck.close();
}

// The worker checksums behind the copy (as it does behind device pieces):
// host regions staged in 64 MiB pieces with the test hook. A checksum of
// bytes not yet final would fail the restore's verification.
void host_pieces_case() {
    ::setenv("TIERCKPT_TEST_STAGE_PIECES", "1", 1);
    const std::size_t n = (200u << 20) + 3;
    auto a = pattern(n, 5), b = pattern(77, 6);
    auto a0 = a, b0 = b;
    std::uint64_t sb = store_bytes_for(n + 77);
    tckgpu::TempStore store = shared_store(sb, "pieces");
    tierckpt::Options o;
    o.set("store", store.path).set("store_bytes", std::to_string(sb));
    tierckpt::Checkpointer ck(&o);
    ::unsetenv("TIERCKPT_TEST_STAGE_PIECES");
    ck.add("a", a.data(), a.size());
    ck.add("b", b.data(), b.size());
    for (std::uint64_t v = 1; v <= 3; ++v) {
        a[v] = static_cast<unsigned char>(v);
        a0[v] = a[v];
        ck.save(v);
    }
    ck.wait();
    expect(ck.stats().committed == 1, "version 3 did not commit");
    std::memset(a.data(), 0, a.size());
    auto v = ck.restore();
    expect(v && *v == 3, "restore did not find version 3");
    expect(a == a0 && b == b0, "restored regions differ from what was saved");
    ck.close();
}

#ifdef TCK_HAVE_CUDA

void cuda_ok(cudaError_t rc, const char *what) {
    if (rc != cudaSuccess) throw Failure{std::string(what) + ": " + cudaGetErrorString(rc)};
}

struct DeviceBuffer {
    void *p = nullptr;
    std::size_t n;
    explicit DeviceBuffer(std::size_t bytes) : n(bytes) { cuda_ok(cudaMalloc(&p, bytes), "cudaMalloc"); }
    ~DeviceBuffer() { (void)cudaFree(p); }
    void upload(const std::vector<unsigned char> &v) {
        cuda_ok(cudaMemcpy(p, v.data(), v.size(), cudaMemcpyHostToDevice), "cudaMemcpy H2D");
    }
    std::vector<unsigned char> download() const {
        std::vector<unsigned char> v(n);
        cuda_ok(cudaMemcpy(v.data(), p, n, cudaMemcpyDeviceToHost), "cudaMemcpy D2H");
        return v;
    }
};

// Device regions (one spans three 64 MiB pieces and ends unaligned), a
// 1-byte device region and a host region between them: save, clobber,
// restore, compare every byte. expect_path: the staging path asserted.
void device_roundtrip(const std::string &expect_path) {
    const std::size_t big = (130u << 20) + 7, small = 1, host = 12345;
    auto pb = pattern(big, 11), ps = pattern(small, 12), ph = pattern(host, 13);
    DeviceBuffer db(big), ds(small);
    db.upload(pb);
    ds.upload(ps);
    auto h = ph;
    std::uint64_t sb = store_bytes_for(big + small + host);
    tckgpu::TempStore store = shared_store(sb, "rt");
    tierckpt::Options o;
    o.set("store", store.path).set("store_bytes", std::to_string(sb));
    tierckpt::Checkpointer ck(&o);
    ck.add("big", db.p, big);
    ck.add("host", h.data(), host);
    ck.add("small", ds.p, small);
    note("  stage path: %s\n", ck.stage_path().c_str());
    if (!expect_path.empty()) expect(ck.stage_path() == expect_path, "stage path " + ck.stage_path() + ", expected " + expect_path);
    int dev_before = -1, dev_after = -2;
    cuda_ok(cudaGetDevice(&dev_before), "cudaGetDevice");
    ck.save(1);
    cuda_ok(cudaGetDevice(&dev_after), "cudaGetDevice");
    expect(dev_before == dev_after, "save changed the calling thread's current device");
    ck.wait();
    expect(ck.stats().committed == 1, "version 1 did not commit");
    cuda_ok(cudaMemset(db.p, 0xab, big), "cudaMemset");
    cuda_ok(cudaMemset(ds.p, 0xcd, small), "cudaMemset");
    std::memset(h.data(), 0, host);
    auto v = ck.restore();
    expect(v && *v == 1, "restore found no version 1");
    expect(db.download() == pb, "the 130 MiB device region differs after restore");
    expect(ds.download() == ps, "the 1-byte device region differs after restore");
    expect(h == ph, "the host region differs after restore");
    ck.close();
}

// save() copies what the application queued before it (work on its own
// non-blocking stream included) and nothing written after it returns.
void save_boundaries() {
    const std::size_t n = 96u << 20;
    auto before = pattern(n, 21);
    DeviceBuffer d(n);
    d.upload(pattern(n, 20));
    void *staged = nullptr;  // the state the application computes "asynchronously"
    cuda_ok(cudaMallocHost(&staged, n), "cudaMallocHost");
    std::memcpy(staged, before.data(), n);
    cudaStream_t app;
    cuda_ok(cudaStreamCreateWithFlags(&app, cudaStreamNonBlocking), "cudaStreamCreate");
    std::uint64_t sb = store_bytes_for(n);
    tckgpu::TempStore store = shared_store(sb, "bound");
    tierckpt::Options o;
    o.set("store", store.path).set("store_bytes", std::to_string(sb));
    tierckpt::Checkpointer ck(&o);
    ck.add("state", d.p, n);
    // Queued, not waited for: save must see it.
    cuda_ok(cudaMemcpyAsync(d.p, staged, n, cudaMemcpyHostToDevice, app), "cudaMemcpyAsync");
    ck.save(1);
    // Written after save returned: the checkpoint must not see it.
    cuda_ok(cudaMemsetAsync(d.p, 0x5a, n, app), "cudaMemsetAsync");
    cuda_ok(cudaStreamSynchronize(app), "cudaStreamSynchronize");
    ck.wait();
    auto v = ck.restore();
    expect(v && *v == 1, "restore found no version 1");
    expect(d.download() == before, "the checkpoint is not the state at save(): queued work missed or later writes seen");
    ck.close();
    (void)cudaStreamDestroy(app);
    (void)cudaFreeHost(staged);
}

// A device copy that fails (the region was freed) fails the save; the
// version does not commit, and the previous one stays restorable.
void failed_copy() {
    const std::size_t n = 8u << 20;
    auto want = pattern(n, 31);
    std::uint64_t sb = store_bytes_for(n);
    tckgpu::TempStore store = shared_store(sb, "fail");
    tierckpt::Options o;
    o.set("store", store.path).set("store_bytes", std::to_string(sb));
    {
        auto *d = new DeviceBuffer(n);
        d->upload(want);
        tierckpt::Checkpointer ck(&o);
        ck.add("state", d->p, n);
        ck.save(1);
        ck.wait();
        delete d;  // the registered region is gone
        bool threw = false;
        try {
            ck.save(2);
        } catch (const tierckpt::Error &e) {
            threw = true;
            note("  save(2): %s\n", e.what());
        }
        expect(threw, "save of a freed device region did not fail");
        threw = false;
        try {
            ck.wait();
        } catch (const tierckpt::Error &) {
            threw = true;
        }
        expect(threw, "the failed version's commit was not refused");
        expect(ck.stats().committed == 0, "the failed version counts as committed");
        ck.close();
    }
    DeviceBuffer again(n);
    cuda_ok(cudaMemset(again.p, 0, n), "cudaMemset");
    tierckpt::Checkpointer ck(&o);
    ck.add("state", again.p, n);
    auto v = ck.restore();
    expect(v && *v == 1, "version 1 is not the newest restorable one after version 2 failed");
    expect(again.download() == want, "version 1 differs after restore");
    ck.close();
}

#endif  // TCK_HAVE_CUDA

}  // namespace

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);  // ours: the checkpointers then leave it alone
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_world);
    g_store_id = ::getpid();
    MPI_Bcast(&g_store_id, 1, MPI_LONG, 0, MPI_COMM_WORLD);
    run_case("host regions save and restore bit-exact in this build (stage path host)", host_case);
    run_case("the checksum follows the copy piece by piece and still matches (host, TIERCKPT_TEST_STAGE_PIECES)",
             host_pieces_case);

    std::string why;
    int devices = tck::cuda::device_count(&why);
#ifdef TCK_HAVE_CUDA
    std::string skip = devices > 0 ? "" : why + " (run tests/gpu/run-on-device.sh on a GPU machine)";
    if (devices > 0) {
        cudaDeviceProp prop{};
        if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) note("  device 0: %s\n", prop.name);
    }
    run_case("device regions save and restore bit-exact", [] { device_roundtrip(""); }, skip);
    run_case("device regions through bounce buffers (cuda-bounce) bit-exact",
             [] {
                 ::setenv("TIERCKPT_TEST_CUDA_BOUNCE", "1", 1);
                 try {
                     device_roundtrip("cuda-bounce");
                 } catch (...) {
                     ::unsetenv("TIERCKPT_TEST_CUDA_BOUNCE");
                     throw;
                 }
                 ::unsetenv("TIERCKPT_TEST_CUDA_BOUNCE");
             },
             skip);
    run_case("save copies the work queued before it and nothing written after it returns", save_boundaries, skip);
    run_case("a device copy that fails fails the save, and the previous version stays", failed_copy, skip);
#else
    (void)devices;
    const std::string skip = "libtierckpt built without CUDA (configure --with-cuda)";
    for (const char *n : {"device regions save and restore bit-exact",
                          "device regions through bounce buffers (cuda-bounce) bit-exact",
                          "save copies the work queued before it and nothing written after it returns",
                          "a device copy that fails fails the save, and the previous version stays"}) {
        run_case(n, [] {}, skip);
    }
#endif
    MPI_Finalize();
    return g_failed ? 1 : 0;
}
