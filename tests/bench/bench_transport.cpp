// bench_transport: the RDMA read that replication uses, between two ranks
// on two nodes, through tierckpt's own transport (ucx or ofi), in the
// pieces the runtime reads (Transport::pull_piece), best of 3. Prints
// "transport=K bytes=B seconds=S gbps=G first_gbps=F" (F: the first read, on
// connections made at first contact)
// from rank 0. Run by tests/bench/transport.sh on the test cluster:
//   srun --mpi=pmix -N2 -n2 bench_transport ucx
#include <mpi.h>
#include <sys/mman.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "lib/transport/transport.hpp"

int main(int argc, char **argv) {
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    int rank = 0, size = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    std::string kind = argc > 1 ? argv[1] : "ucx";
    const std::size_t bytes = 256u << 20;
    if (size != 2) {
        if (rank == 0) std::fprintf(stderr, "bench_transport: run with 2 ranks on 2 nodes\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    void *buf = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    std::memset(buf, rank + 1, bytes);
    auto t = tck::make_transport(kind);
    if (!t) {
        std::fprintf(stderr, "bench_transport: %s\n", t.status().message().c_str());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    auto blob = (*t)->local_blob(buf, bytes);
    if (!blob) {
        std::fprintf(stderr, "bench_transport: %s\n", blob.status().message().c_str());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    int len = static_cast<int>(blob->size()), lens[2];
    MPI_Allgather(&len, 1, MPI_INT, lens, 1, MPI_INT, MPI_COMM_WORLD);
    std::vector<std::uint8_t> all(static_cast<std::size_t>(lens[0] + lens[1]));
    int displs[2] = {0, lens[0]};
    MPI_Allgatherv(blob->data(), len, MPI_BYTE, all.data(), lens, displs, MPI_BYTE, MPI_COMM_WORLD);
    std::vector<std::vector<std::uint8_t>> blobs = {{all.begin(), all.begin() + lens[0]}, {all.begin() + lens[0], all.end()}};
    std::uint64_t token = 0x5eed;  // the bench's ranks share it, as a job's do
    if (auto st = (*t)->set_peers(blobs, rank, token); !st) MPI_Abort(MPI_COMM_WORLD, 1);

    const std::size_t piece = (*t)->pull_piece();  // what the runtime reads at once
    double best = 1e30, first = 0;  // first: the first read after set-up (connections made on first contact)
    for (int rep = 0; rep < 3; ++rep) {
        MPI_Barrier(MPI_COMM_WORLD);
        if (rank == 0) {
            auto t0 = std::chrono::steady_clock::now();
            for (std::size_t off = 0; off < bytes; off += piece) {
                auto st = (*t)->get(1, off, static_cast<char *>(buf) + off, piece, 60000, nullptr);
                if (!st) {
                    std::fprintf(stderr, "bench_transport: %s\n", st.message().c_str());
                    MPI_Abort(MPI_COMM_WORLD, 1);
                }
            }
            double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            if (rep == 0) first = took;
            best = std::min(best, took);
            MPI_Send(&best, 1, MPI_DOUBLE, 1, 0, MPI_COMM_WORLD);
        } else {
            // The target serves reads (software RMA on TCP) while waiting.
            MPI_Request req;
            double dummy;
            MPI_Irecv(&dummy, 1, MPI_DOUBLE, 0, 0, MPI_COMM_WORLD, &req);
            int done = 0;
            while (!done) {
                tck::TransportMsg m;
                while ((*t)->poll(m)) {
                }
                (*t)->wait(-1, 1);
                MPI_Test(&req, &done, MPI_STATUS_IGNORE);
            }
        }
    }
    if (rank == 0) {
        bool ok = static_cast<unsigned char *>(buf)[bytes - 1] == 2;
        std::printf("transport=%s bytes=%zu seconds=%.4f gbps=%.3f first_gbps=%.3f data=%s\n", kind.c_str(), bytes,
                    best, static_cast<double>(bytes) / best / 1e9, static_cast<double>(bytes) / first / 1e9,
                    ok ? "ok" : "WRONG");
    }
    t->reset();
    MPI_Finalize();
    return 0;
}
