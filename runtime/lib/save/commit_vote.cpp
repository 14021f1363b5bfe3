#include "commit_vote.hpp"

#include "lib/collectives.hpp"

namespace tck {

Status CommitVote::start(MPI_Comm comm, Ballot mine) {
    local_[0] = mine.verdict;
    local_[1] = mine.room ? 1 : 0;
    global_[0] = global_[1] = 0;
    int rc = MPI_Iallreduce(local_, global_, 2, MPI_INT, MPI_MIN, comm, &req_);
    if (rc != MPI_SUCCESS) return mpi_error("the commit vote (MPI_Iallreduce)", rc);
    started_ = true;
    return Status::ok();
}

Result<bool> CommitVote::poll(bool block) {
    int done = 0;
    int rc = test_request(req_, done, block);
    if (rc != MPI_SUCCESS) return mpi_error("the commit vote", rc);
    return block || done != 0;
}

void CommitVote::reset() {
    started_ = false;
    local_[0] = local_[1] = global_[0] = global_[1] = 0;
    req_ = MPI_REQUEST_NULL;
}

}  // namespace tck
