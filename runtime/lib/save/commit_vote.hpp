// The commit vote: an MPI_Iallreduce(MIN) of every rank's view of the save
// in flight ("my shard is staged, checksummed and copied to all my
// partners", "it failed", or "not yet") and of whether this rank could hold
// the next save beside it. A version commits only when every rank votes
// yes; it stays in flight when one says "not yet" and none says no.
//
// Thread: the application's only. The vote runs only inside calls every
// rank makes at the same point of the program (save, wait, close), never
// from test(): a rank waiting in it could otherwise block another rank that
// sits in one of the application's own collectives. It is decided within
// the call that casts it.
#pragma once

#include <mpi.h>

#include "common/status.hpp"

namespace tck {

struct CommitVote {
    // What one rank knows of the save in flight, ordered so that MIN gives
    // the job's verdict: any failure wins, then any rank not done yet.
    enum Verdict : int { failed = 0, pending = 1, ready = 2 };
    struct Ballot {
        Verdict verdict = failed;
        bool room = true;  // this rank holds the next save beside the one in flight
    };
    // Collective: casts this rank's ballot and returns the job's (ready:
    // every rank voted yes; room: every rank had room). Waits yielding the
    // CPU to the worker, which may still be pulling a partner's shard.
    static Result<Ballot> cast(MPI_Comm comm, Ballot mine);
};

}  // namespace tck
