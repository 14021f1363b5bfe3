// The commit vote: a non-blocking MPI_Iallreduce(MIN) of every rank's "my
// shard is staged, checksummed and copied to all my partners". A version
// commits only when every rank votes yes.
//
// Thread: the application's only. The vote is started only inside calls
// every rank makes at the same point of the program (save, wait, close),
// never from test(): a rank waiting in it could otherwise block another
// rank that sits in one of the application's own collectives.
#pragma once

#include <mpi.h>

#include "common/status.hpp"

namespace tck {

class CommitVote {
public:
    CommitVote() = default;
    CommitVote(const CommitVote &) = delete;  // MPI writes into it while the vote runs
    CommitVote &operator=(const CommitVote &) = delete;

    bool started() const { return started_; }
    // Collective (non-blocking): casts this rank's vote.
    Status start(MPI_Comm comm, bool yes);
    // True once the vote is decided; with block, waits (yielding the CPU to
    // the worker, which may still be pulling a partner's shard).
    Result<bool> poll(bool block);
    // Once decided: whether every rank voted yes.
    bool passed() const { return global_ == 1; }
    void reset();

private:
    bool started_ = false;
    int local_ = 0, global_ = 0;
    MPI_Request req_ = MPI_REQUEST_NULL;
};

}  // namespace tck
