#include "commit_vote.hpp"

#include "lib/collectives.hpp"

namespace tck {

Result<CommitVote::Ballot> CommitVote::cast(MPI_Comm comm, Ballot mine) {
    int local[2] = {mine.verdict, mine.room ? 1 : 0}, global[2] = {0, 0};
    MPI_Request req = MPI_REQUEST_NULL;
    int rc = MPI_Iallreduce(local, global, 2, MPI_INT, MPI_MIN, comm, &req);
    if (rc != MPI_SUCCESS) return mpi_error("the commit vote (MPI_Iallreduce)", rc);
    int done = 0;
    rc = test_request(req, done, true);
    if (rc != MPI_SUCCESS) return mpi_error("the commit vote", rc);
    return Ballot{static_cast<Verdict>(global[0]), global[1] == 1};
}

}  // namespace tck
