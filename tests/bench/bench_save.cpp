// make bench: the save stall against a plain memcpy of the same bytes into
// pre-faulted tmpfs memory, checksum throughput against memcpy, and the
// node-store bytes needed per byte of state. One line per figure:
//   bench NAME value=X unit=U reference=R ratio=X/R
// Each reference is measured in the same run, on the same machine.
#include <fcntl.h>
#include <mpi.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "store/crc32c.hpp"
#include "store/store_format.hpp"
#include "tierckpt/tierckpt.hpp"
#include "bench_util.hpp"

namespace {

using bench::now_ms;
using bench::report;

// A pre-faulted shared tmpfs mapping, like the node store.
struct ShmBuffer {
    std::string path;
    void *p = MAP_FAILED;
    std::size_t n;
    explicit ShmBuffer(std::size_t bytes) : n(bytes) {
        char tmpl[] = "/dev/shm/tck-bench-ref-XXXXXX";
        int fd = ::mkstemp(tmpl);
        path = tmpl;
        if (fd < 0 || ::posix_fallocate(fd, 0, static_cast<off_t>(bytes)) != 0) {
            std::perror("bench: reference buffer");
            std::exit(1);
        }
        p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
        ::close(fd);
        if (p == MAP_FAILED) {
            std::perror("bench: mmap");
            std::exit(1);
        }
    }
    ~ShmBuffer() {
        ::munmap(p, n);
        ::unlink(path.c_str());
    }
};

}  // namespace

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    const int reps = 3;
    for (std::size_t mib : {256u, 1024u}) {
        std::size_t bytes = mib << 20;
        std::vector<unsigned char> state(bytes);
        for (std::size_t i = 0; i < bytes; i += 4096) state[i] = static_cast<unsigned char>(i >> 12);

        ShmBuffer ref(bytes);
        double best_copy = 1e30;
        for (int r = 0; r < reps; ++r) {
            double t0 = now_ms();
            std::memcpy(ref.p, state.data(), bytes);
            best_copy = std::min(best_copy, now_ms() - t0);
        }

        std::string store = "/dev/shm/tck-bench-store-" + std::to_string(::getpid());
        double best_stall = 1e30, checksum_ms = 0;
        std::uint64_t used = 0;
        {
            tierckpt::Options o;
            o.set("store", store).set("store_bytes", std::to_string(2 * bytes + (64u << 20)));
            tierckpt::Checkpointer ck(&o);
            ck.add("state", state.data(), bytes);
            for (int r = 0; r < reps + 1; ++r) {
                ck.save(static_cast<std::uint64_t>(r + 1));
                auto st = ck.stats();
                ck.wait();
                if (r > 0) best_stall = std::min(best_stall, st.stall_ms);  // the first save touches new slots
                checksum_ms = ck.stats().checksum_ms;
            }
            ck.close();
            auto f = tck::store::StoreFile::open(store, 0, false, true);
            if (f) used = f->header().next_free;
        }
        ::unlink(store.c_str());
        report("save_stall_" + std::to_string(mib) + "MiB", best_stall, "ms", best_copy);

        if (mib == 256) {
            double best_crc = 1e30;
            volatile std::uint32_t sink = 0;
            for (int r = 0; r < reps; ++r) {
                double t0 = now_ms();
                sink = tck::crc32c(state.data(), bytes);
                best_crc = std::min(best_crc, now_ms() - t0);
            }
            (void)sink;
            double gbs = static_cast<double>(bytes) / best_crc / 1e6;
            double copy_gbs = static_cast<double>(bytes) / best_copy / 1e6;
            report("checksum_crc32c_throughput", gbs, "GB/s", copy_gbs);
            report("checksum_in_save_256MiB", checksum_ms, "ms", best_copy);
            report("store_bytes_per_state_byte", static_cast<double>(used) / static_cast<double>(bytes), "x", 2.0);
        }
    }
    MPI_Finalize();
    return 0;
}
