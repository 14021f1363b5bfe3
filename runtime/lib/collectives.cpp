#include "collectives.hpp"

#include <algorithm>
#include <climits>
#include <cstdio>

#include <unistd.h>

#include <string>

namespace tck {

Status mpi_error(const char *what, int rc) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return error(TIERCKPT_ERR_PEER, "{} failed: {}", what, std::string(msg, static_cast<std::size_t>(len)));
}

int test_request(MPI_Request &req, int &done, bool block) {
    int rc = MPI_Test(&req, &done, MPI_STATUS_IGNORE);
    while (block && rc == MPI_SUCCESS && !done) {
        ::usleep(100);
        rc = MPI_Test(&req, &done, MPI_STATUS_IGNORE);
    }
    return rc;
}

bool all_ranks(MPI_Comm comm, bool ok) {
    int v = ok ? 1 : 0, out = 0;
    MPI_Request req = MPI_REQUEST_NULL;
    if (MPI_Iallreduce(&v, &out, 1, MPI_INT, MPI_MIN, comm, &req) != MPI_SUCCESS) return false;
    int done = 0;
    test_request(req, done, true);
    return done && out == 1;
}

bool any_rank(MPI_Comm comm, bool flag) {
    int v = flag ? 1 : 0, out = 0;
    if (MPI_Allreduce(&v, &out, 1, MPI_INT, MPI_MAX, comm) != MPI_SUCCESS) return false;
    return out == 1;
}

Status first_failure(MPI_Comm comm, const Status &mine, const char *what) {
    int rank = 0, world = 0;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &world);
    const int mine_bad = mine ? world : rank;
    int first_bad = world;
    int rc = MPI_Allreduce(&mine_bad, &first_bad, 1, MPI_INT, MPI_MIN, comm);
    if (rc != MPI_SUCCESS) return mpi_error(what, rc);
    if (first_bad == world) return Status::ok();
    struct {
        int code;
        char text[1024];
    } verdict{};
    if (rank == first_bad) {
        verdict.code = static_cast<int>(mine.code());
        std::snprintf(verdict.text, sizeof verdict.text, "%s", mine.message().c_str());
    }
    rc = MPI_Bcast(&verdict, sizeof verdict, MPI_BYTE, first_bad, comm);
    if (rc != MPI_SUCCESS) return mpi_error(what, rc);
    verdict.text[sizeof verdict.text - 1] = '\0';
    return Status(static_cast<tierckpt_status_t>(verdict.code), verdict.text);
}

Result<std::vector<std::vector<std::uint8_t>>> allgather_bytes(MPI_Comm comm, const void *data, std::size_t len,
                                                                const char *what) {
    int world = 0;
    MPI_Comm_size(comm, &world);
    // MPI counts are int: a part, or the whole, of 2 GiB or more is refused
    // on every rank alike (each sees every length).
    constexpr std::uint64_t kMax = static_cast<std::uint64_t>(INT_MAX);
    std::uint64_t mine64 = len;
    std::vector<std::uint64_t> lens64(static_cast<std::size_t>(world));
    int rc = MPI_Allgather(&mine64, 1, MPI_UINT64_T, lens64.data(), 1, MPI_UINT64_T, comm);
    if (rc != MPI_SUCCESS) return mpi_error(what, rc);
    std::uint64_t sum = 0;
    for (std::uint64_t l : lens64) sum += std::min(l, kMax + 1);
    if (sum > kMax) {
        return error(TIERCKPT_ERR_NO_MEMORY, "{}: {} bytes to gather on every rank, more than one MPI message "
                                             "carries (2 GiB)", what, sum);
    }
    const int mine = static_cast<int>(len);
    std::vector<int> lens(static_cast<std::size_t>(world)), displs(static_cast<std::size_t>(world));
    int total = 0;
    for (int i = 0; i < world; ++i) {
        lens[static_cast<std::size_t>(i)] = static_cast<int>(lens64[static_cast<std::size_t>(i)]);
        displs[static_cast<std::size_t>(i)] = total;
        total += lens[static_cast<std::size_t>(i)];
    }
    std::vector<std::uint8_t> all(static_cast<std::size_t>(total));
    rc = MPI_Allgatherv(data, mine, MPI_BYTE, all.data(), lens.data(), displs.data(), MPI_BYTE, comm);
    if (rc != MPI_SUCCESS) return mpi_error(what, rc);
    std::vector<std::vector<std::uint8_t>> out(static_cast<std::size_t>(world));
    for (std::size_t i = 0; i < out.size(); ++i) {
        auto b = all.begin() + displs[i];
        out[i].assign(b, b + lens[i]);
    }
    return out;
}

}  // namespace tck
