// The job's layout of sliced and replicated regions (tierckpt(3),
// tierckpt_register_slice): checked across the ranks before a save, so that
// every checkpoint that holds one describes whole global arrays, which a
// restore may then cut differently.
//
// check_job_layout is pure (unit-tested in tests/unit/test_layout.cpp);
// agree_layout is collective.
#pragma once

#include <mpi.h>

#include <vector>

#include "common/status.hpp"
#include "store/store_format.hpp"

namespace tck {

// by_rank[r]: rank r's regions that have a layout (RegionSet::layouts).
// The rules, per name:
//   - one kind on every rank that registers it;
//   - replicated: registered on every rank, with one size;
//   - slice: one global size on every rank, and the slices tile it: no
//     byte in two ranks' slices, none in no rank's.
// TIERCKPT_ERR_INVALID naming the array, the ranks and the bytes of the
// first problem (names in order), Status::ok() otherwise.
Status check_job_layout(const std::vector<std::vector<store::RegionEntry>> &by_rank);

// Collective over comm: every rank sends its layout entries to every rank
// (one all-gather of 88 bytes per region that has a layout), and every
// rank runs check_job_layout on them, so all return the same status.
// TIERCKPT_ERR_PEER when MPI fails.
Status agree_layout(MPI_Comm comm, const std::vector<store::RegionEntry> &mine);

}  // namespace tck
