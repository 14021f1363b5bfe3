// The run report: lines the runtime prints on stderr under
// TIERCKPT_RUN_REPORT=1 (set by `tierckpt run`), and that `tierckpt run`
// reads back from the step's output to account for a recovery. Written and
// parsed here only, so the two sides cannot drift apart (round-trip tested
// in tests/unit/test_run_report.cpp).
//
//   tierckpt-report commit version=V
//   tierckpt-report restore rank=R node=NODE version=V source=S bytes=B ms=M via=X
//
// rank 0 prints the commit line after each commit; every rank prints one
// restore line per restore. A parser finds a line anywhere in its input
// (srun's "-l" prefixes "R: ").
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace tck::report {

// One rank's restore.
struct Restore {
    int rank = -1;
    std::string node;          // host name, as gethostname gives it (no spaces)
    std::uint64_t version = 0;  // 0 with source "none"
    std::string source;        // local, peer, persistent or none
    std::uint64_t bytes = 0;   // this rank's shard, manifest included
    double ms = 0;             // from the call to its return (fetch + restore when both ran)
    std::string via;           // how the bytes came: store, ucx, ofi, mpi, file or none
};

std::string format_restore(const Restore &r);
std::optional<Restore> parse_restore(const std::string &line);

std::string format_commit(std::uint64_t version);
std::optional<std::uint64_t> parse_commit(const std::string &line);

}  // namespace tck::report
