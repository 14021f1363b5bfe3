// tierckpt-mpi-probe: proves that MPI works across the nodes of an
// allocation, the ground every tierckpt job stands on. Each rank prints
//   rank=R size=N node=HOST
// and rank 0 then prints the results of two collectives:
//   sum=S expected=E nodes=K
// where S is an MPI_Allreduce of the ranks (E = N(N-1)/2) and K the
// number of distinct nodes (hostnames) seen through MPI_Allgather.
// Exit status 0 only when S == E.
//
//   srun --mpi=pmix -N3 -n6 tierckpt-mpi-probe
#include <mpi.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <vector>

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank = 0, size = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);

    char host[256] = {};
    gethostname(host, sizeof host - 1);
    std::printf("rank=%d size=%d node=%s\n", rank, size, host);
    std::fflush(stdout);

    long mine = rank, sum = 0;
    MPI_Allreduce(&mine, &sum, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);

    std::vector<char> all(static_cast<size_t>(size) * sizeof host);
    MPI_Allgather(host, sizeof host, MPI_CHAR, all.data(), sizeof host, MPI_CHAR, MPI_COMM_WORLD);
    std::set<std::string> nodes;
    for (int r = 0; r < size; ++r) nodes.insert(std::string(&all[static_cast<size_t>(r) * sizeof host]));

    long expected = static_cast<long>(size) * (size - 1) / 2;
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        std::printf("sum=%ld expected=%ld nodes=%zu\n", sum, expected, nodes.size());
        std::fflush(stdout);
    }
    MPI_Finalize();
    return sum == expected ? 0 : 1;
}
