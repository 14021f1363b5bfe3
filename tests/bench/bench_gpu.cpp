// make bench, GPU part: staging device memory into the node store against a
// plain cudaMemcpy of the same bytes from the device into pinned host
// memory, measured in the same run on the same device. One line per figure:
//   bench NAME value=X unit=U reference=R ratio=X/R
// Without the CUDA tier or a device it prints one "skipped" line and exits 0.
// TCK_BENCH_GPU_MIB sets the size (default 1024).
#include "config.h"

#include <sys/mman.h>

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#ifdef TCK_HAVE_CUDA
#include <cuda_runtime.h>
#endif

#include "store/crc32c.hpp"
#include "lib/cuda_stage.hpp"
#include "../gpu/gpu_common.hpp"
#include "tierckpt/tierckpt.hpp"
#include "bench_util.hpp"

namespace {

using bench::now_ms;
using bench::report;

#ifdef TCK_HAVE_CUDA
void check(cudaError_t rc, const char *what) {
    if (rc != cudaSuccess) {
        std::fprintf(stderr, "bench_gpu: %s: %s\n", what, cudaGetErrorString(rc));
        std::exit(1);
    }
}

// Best of `reps` saves of one device region, then of two restores.
struct StageRun {
    std::string path;        // the staging path taken
    double stall_gbs = 0;    // of the save with the best stall
    double stall_ms = 0;     // that save's stall
    double checksum_ms = 0;  // that save's checksum, first piece to last
    double restore_gbs = 0;  // of the faster restore
    double add_ms = 0;       // the first device add(): registers the whole store with CUDA
};

StageRun stage(void *dev, std::size_t bytes, int reps, const std::string &tag) {
    StageRun run;
    std::uint64_t sb = tckgpu::store_bytes_for(bytes);
    tckgpu::TempStore store(sb, "bench-" + tag);
    double best = 1e30, best_restore = 1e30;
    {
        tierckpt::Options o;
        o.set("store", store.path).set("store_bytes", std::to_string(sb));
        tierckpt::Checkpointer ck(&o);
        double t0 = now_ms();
        ck.add("state", dev, bytes);
        run.add_ms = now_ms() - t0;
        run.path = ck.stage_path();
        for (int r = 0; r < reps + 1; ++r) {
            ck.save(static_cast<std::uint64_t>(r + 1));
            double stall = ck.stats().stall_ms;
            ck.wait();
            if (r > 0 && stall < best) {  // the first save touches new slots
                best = stall;
                run.checksum_ms = ck.stats().checksum_ms;
            }
        }
        for (int r = 0; r < 2; ++r) {
            t0 = now_ms();
            (void)ck.restore();
            best_restore = std::min(best_restore, now_ms() - t0);
        }
        ck.close();
    }
    run.stall_ms = best;
    run.stall_gbs = static_cast<double>(bytes) / best / 1e6;
    run.restore_gbs = static_cast<double>(bytes) / best_restore / 1e6;
    return run;
}
#endif

}  // namespace

int main(int argc, char **argv) {
    std::string why;
    if (tck::cuda::device_count(&why) == 0) {
        std::printf("bench gpu_stage skipped: %s\n", why.c_str());
        return 0;
    }
#ifdef TCK_HAVE_CUDA
    MPI_Init(&argc, &argv);
    std::size_t mib = 1024;
    if (const char *m = std::getenv("TCK_BENCH_GPU_MIB")) mib = std::strtoul(m, nullptr, 10);
    std::size_t bytes = mib << 20;
    const int reps = 3;
    cudaDeviceProp prop{};
    check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
    std::printf("bench gpu device: %s, %zu MiB, store in %s\n", prop.name, mib,
                tckgpu::store_dir(tckgpu::store_bytes_for(bytes)).c_str());
    void *dev = nullptr, *pinned = nullptr;
    check(cudaMalloc(&dev, bytes), "cudaMalloc");
    check(cudaMemset(dev, 0x3c, bytes), "cudaMemset");
    check(cudaMallocHost(&pinned, bytes), "cudaMallocHost");
    double d2h = 1e30, h2d = 1e30;
    for (int r = 0; r < reps + 1; ++r) {
        double t0 = now_ms();
        check(cudaMemcpy(pinned, dev, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy D2H");
        if (r > 0) d2h = std::min(d2h, now_ms() - t0);
        t0 = now_ms();
        check(cudaMemcpy(dev, pinned, bytes, cudaMemcpyHostToDevice), "cudaMemcpy H2D");
        if (r > 0) h2d = std::min(h2d, now_ms() - t0);
    }
    check(cudaFreeHost(pinned), "cudaFreeHost");
    double ref_d2h = static_cast<double>(bytes) / d2h / 1e6, ref_h2d = static_cast<double>(bytes) / h2d / 1e6;
    std::string m = std::to_string(mib) + "MiB";

    // What registering a mapping of the store's size costs by itself:
    // anonymous memory, touched first as the store's pages are.
    std::size_t store_bytes = tckgpu::store_bytes_for(bytes);
    void *anon = ::mmap(nullptr, store_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (anon == MAP_FAILED) {
        std::fprintf(stderr, "bench_gpu: mmap of %zu bytes failed\n", store_bytes);
        return 1;
    }
    std::memset(anon, 1, store_bytes);
    double t0 = now_ms();
    check(cudaHostRegister(anon, store_bytes, cudaHostRegisterDefault), "cudaHostRegister");
    double register_ms = now_ms() - t0;
    check(cudaHostUnregister(anon), "cudaHostUnregister");
    ::munmap(anon, store_bytes);

    StageRun direct = stage(dev, bytes, reps, "direct");
    // The name carries the path taken: "cuda-direct" unless the store
    // could not be registered.
    const std::string path = direct.path.substr(5);
    report("gpu_stage_" + path + "_" + m, direct.stall_gbs, "GB/s", ref_d2h);
    report("gpu_restore_" + path + "_" + m, direct.restore_gbs, "GB/s", ref_h2d);
    // The checksum runs behind the copy; 1.0 means it kept pace and the
    // copies to partners could start as the copy ended.
    report("gpu_checksum_ms_behind_copy_" + m, direct.checksum_ms, "ms", direct.stall_ms);
    report("gpu_first_device_add_ms_store_" + std::to_string(store_bytes >> 20) + "MiB", direct.add_ms, "ms",
           register_ms);
    ::setenv("TIERCKPT_TEST_CUDA_BOUNCE", "1", 1);
    StageRun bounce = stage(dev, bytes, reps, "bounce");
    ::unsetenv("TIERCKPT_TEST_CUDA_BOUNCE");
    report("gpu_stage_bounce_" + m, bounce.stall_gbs, "GB/s", ref_d2h);

    // What restore does on the host before its copy to the device: verify
    // the shard (one thread, then the threads a lone rank uses), against a
    // memcpy of the same bytes (the bounce path's speed).
    std::vector<unsigned char> src(bytes, 0x5c), dst(bytes);
    double copy = 1e30, crc1 = 1e30, crcn = 1e30;
    unsigned threads = std::clamp(std::thread::hardware_concurrency(), 1u, 8u);
    volatile std::uint32_t sink = 0;
    for (int r = 0; r < reps; ++r) {
        t0 = now_ms();
        std::memcpy(dst.data(), src.data(), bytes);
        copy = std::min(copy, now_ms() - t0);
        t0 = now_ms();
        sink = tck::crc32c(src.data(), bytes);
        crc1 = std::min(crc1, now_ms() - t0);
        t0 = now_ms();
        sink = tck::crc32c_parallel(src.data(), bytes, threads);
        crcn = std::min(crcn, now_ms() - t0);
    }
    (void)sink;
    double copy_gbs = static_cast<double>(bytes) / copy / 1e6;
    report("host_crc32c_1thread_" + m, static_cast<double>(bytes) / crc1 / 1e6, "GB/s", copy_gbs);
    report("host_crc32c_" + std::to_string(threads) + "threads_" + m, static_cast<double>(bytes) / crcn / 1e6, "GB/s",
           copy_gbs);
    check(cudaFree(dev), "cudaFree");
    MPI_Finalize();
#else
    (void)argc;
    (void)argv;
#endif
    return 0;
}
