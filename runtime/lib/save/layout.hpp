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

// by_rank[r]: rank r's regions (RegionSet::entries, or a saved shard's
// manifest); by_rank.size() is the world size. The rules, per name:
//   - every entry a layout its size allows (store::layout_problem);
//   - one kind on every rank that registers it (opaque included: a name
//     opaque on every rank is that rank's own, and has no other rule);
//   - replicated: registered on every rank, with one size;
//   - slice: one global size on every rank, and the slices tile it: no
//     byte in two slices, none in no slice.
// TIERCKPT_ERR_INVALID naming the array, the ranks and the bytes of the
// first problem (names in order), Status::ok() otherwise.
Status check_job_layout(const std::vector<std::vector<store::RegionEntry>> &by_rank);

// Collective over comm; every rank returns the same status. Each name's
// entries go to one rank (its owner, by a hash of the name) in one
// all-to-all of 88 bytes per region, so that no rank receives more than the
// arrays it owns; each owner runs check_job_layout on them, and the lowest
// owner that found a problem broadcasts it. TIERCKPT_ERR_PEER when MPI
// fails; TIERCKPT_ERR_INVALID when one owner would receive 2 GiB or more.
Status agree_layout(MPI_Comm comm, const std::vector<store::RegionEntry> &mine);

}  // namespace tck
