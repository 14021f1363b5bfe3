// MPI helpers the parts share. Every function here is collective over comm
// (all ranks call it, in the same order) and runs on the application's
// thread: MPI is never called from the worker or flusher threads
// (MPI_THREAD_FUNNELED is enough).
#pragma once

#include <mpi.h>

#include <cstdint>
#include <vector>

#include "common/status.hpp"

namespace tck {

// An MPI return code as a Status (TIERCKPT_ERR_PEER) naming what failed.
Status mpi_error(const char *what, int rc);

// MPI_Test, and with block again in short sleeps until done: Open MPI's
// blocking waits poll without pause, and while a rank waits its worker may
// be serving or pulling shards, which then lacks the CPU on a busy node.
int test_request(MPI_Request &req, int &done, bool block);

// Whether every rank passed ok (MPI_MIN over an int), waiting by
// test_request. False also when MPI fails.
bool all_ranks(MPI_Comm comm, bool ok);
// Whether any rank passed flag (MPI_MAX over an int); blocking
// MPI_Allreduce. False also when MPI fails.
bool any_rank(MPI_Comm comm, bool flag);

// The job's verdict on a step every rank took: Status::ok() when every
// rank's mine is ok, else the lowest failing rank's status (its code, and
// its message cut to 1023 bytes) on every rank. what names the step in an
// MPI error.
Status first_failure(MPI_Comm comm, const Status &mine, const char *what);

// Every rank's bytes (of any length each), indexed by rank.
Result<std::vector<std::vector<std::uint8_t>>> allgather_bytes(MPI_Comm comm, const void *data, std::size_t len,
                                                                const char *what);

}  // namespace tck
