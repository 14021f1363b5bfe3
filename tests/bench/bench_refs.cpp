// bench_refs: the references the workload bench (tests/bench/workload.sh)
// measures its figures against, in the same run, with the same ranks:
//
//   bench_refs memcpy MIB   every rank copies MIB MiB (touched buffers) at
//                           once; prints "memcpy_ms=X": the slowest rank's
//                           time, median of 5 rounds
//   bench_refs crc MIB      every rank checksums MIB MiB (crc32c, one thread,
//                           as the worker does after the copy and as a
//                           partner verifies) at once; prints "crc_ms=X",
//                           the slowest rank's time, median of 5 rounds
//   bench_refs ring MIB     every rank sends MIB MiB to the rank in its place
//                           on the next node (the partner replication uses
//                           with one replica) and receives as much from the
//                           previous node, all at once, with MPI
//                           point-to-point in 8 MiB messages, all posted at
//                           once (as osu_bw's window); prints "ring_ms=X":
//                           the slowest rank's time, best of 3 rounds
//
// Run under srun --mpi=pmix on the test cluster, e.g. -N3 -n6.
#include <mpi.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "store/crc32c.hpp"

namespace {

double now_ms() {
    using namespace std::chrono;
    return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

char *touched(std::size_t bytes, int fill) {
    void *p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) {
        std::perror("bench_refs: mmap");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    std::memset(p, fill, bytes);
    return static_cast<char *>(p);
}

// The slowest rank's time for one round of fn.
template <class Fn>
double slowest(Fn fn) {
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = now_ms();
    fn();
    double mine = now_ms() - t0, worst = 0;
    MPI_Allreduce(&mine, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return worst;
}

}  // namespace

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank = 0, world = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    const std::string mode = argc > 1 ? argv[1] : "";
    const long mib = argc > 2 ? std::strtol(argv[2], nullptr, 10) : 0;
    if ((mode != "memcpy" && mode != "crc" && mode != "ring") || mib <= 0 || mib > 4096) {
        if (rank == 0) std::fprintf(stderr, "usage: bench_refs memcpy|crc|ring MIB (1..4096)\n");
        MPI_Finalize();
        return 2;
    }
    const std::size_t bytes = static_cast<std::size_t>(mib) << 20;
    char *src = touched(bytes, rank + 1), *dst = touched(bytes, 0);
    std::vector<double> rounds;
    if (mode == "memcpy") {
        std::memcpy(dst, src, bytes);  // warm
        for (int r = 0; r < 5; ++r) rounds.push_back(slowest([&] { std::memcpy(dst, src, bytes); }));
        std::sort(rounds.begin(), rounds.end());
        if (rank == 0) std::printf("memcpy_ms=%.2f ranks=%d mib=%ld\n", rounds[rounds.size() / 2], world, mib);
    } else if (mode == "crc") {
        volatile std::uint32_t sink = tck::crc32c(src, bytes);  // warm
        for (int r = 0; r < 5; ++r) rounds.push_back(slowest([&] { sink = tck::crc32c(src, bytes); }));
        (void)sink;
        std::sort(rounds.begin(), rounds.end());
        if (rank == 0) std::printf("crc_ms=%.2f ranks=%d mib=%ld\n", rounds[rounds.size() / 2], world, mib);
    } else {
        MPI_Comm node;
        MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
        int per_node = 0;
        MPI_Comm_size(node, &per_node);
        const int to = (rank + per_node) % world, from = (rank - per_node + world) % world;
        constexpr std::size_t kMsg = 8u << 20;
        const std::size_t n = (bytes + kMsg - 1) / kMsg;
        std::vector<MPI_Request> reqs(2 * n);
        auto round = [&] {
            for (std::size_t i = 0; i < n; ++i) {
                const std::size_t off = i * kMsg, len = std::min(kMsg, bytes - off);
                MPI_Irecv(dst + off, static_cast<int>(len), MPI_BYTE, from, static_cast<int>(i), MPI_COMM_WORLD,
                          &reqs[2 * i]);
                MPI_Isend(src + off, static_cast<int>(len), MPI_BYTE, to, static_cast<int>(i), MPI_COMM_WORLD,
                          &reqs[2 * i + 1]);
            }
            MPI_Waitall(static_cast<int>(reqs.size()), reqs.data(), MPI_STATUSES_IGNORE);
        };
        round();  // connections up
        for (int r = 0; r < 3; ++r) rounds.push_back(slowest(round));
        if (rank == 0) {
            std::printf("ring_ms=%.2f ranks=%d per_node=%d mib=%ld\n", *std::min_element(rounds.begin(), rounds.end()),
                        world, per_node, mib);
        }
        MPI_Comm_free(&node);
    }
    MPI_Finalize();
    return 0;
}
