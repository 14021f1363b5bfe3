// The commit vote: a non-blocking MPI_Iallreduce(MIN) of every rank's view
// of the save in flight ("my shard is staged, checksummed and copied to all
// my partners", "it failed", or "not yet") and of whether this rank could
// hold the next save beside it. A version commits only when every rank
// votes yes; it stays in flight when one says "not yet" and none says no.
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
    // What one rank knows of the save in flight, ordered so that MIN gives
    // the job's verdict: any failure wins, then any rank not done yet.
    enum Verdict : int { failed = 0, pending = 1, ready = 2 };
    struct Ballot {
        Verdict verdict = failed;
        bool room = true;  // this rank holds the next save beside the one in flight
    };

    CommitVote() = default;
    CommitVote(const CommitVote &) = delete;  // MPI writes into it while the vote runs
    CommitVote &operator=(const CommitVote &) = delete;

    bool started() const { return started_; }
    // Collective (non-blocking): casts this rank's ballot.
    Status start(MPI_Comm comm, Ballot mine);
    // True once the vote is decided; with block, waits (yielding the CPU to
    // the worker, which may still be pulling a partner's shard).
    Result<bool> poll(bool block);
    // Once decided: the job's verdict (ready: every rank voted yes), and
    // whether every rank had room for the next save.
    Verdict verdict() const { return static_cast<Verdict>(global_[0]); }
    bool room() const { return global_[1] == 1; }
    void reset();

private:
    bool started_ = false;
    int local_[2] = {0, 0}, global_[2] = {0, 0};
    MPI_Request req_ = MPI_REQUEST_NULL;
};

}  // namespace tck
