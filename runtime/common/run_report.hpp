// The run report: lines the runtime prints on stderr under
// TIERCKPT_RUN_REPORT=1 (set by `tierckpt run`), and that `tierckpt run`
// reads back from the step's output to account for a recovery. Written and
// parsed here only, so the two sides cannot drift apart (round-trip tested
// in tests/unit/test_run_report.cpp).
//
//   tierckpt-report commit version=V
//   tierckpt-report restore rank=R node=NODE version=V source=S bytes=B ms=M via=X
//       inventory_ms=I plan_ms=P move_ms=V verify_ms=C copy_ms=Y agree_ms=A   (one line)
//
// rank 0 prints the commit line after each commit; every rank prints one
// restore line per restore. A parser finds a line anywhere in its input
// (srun's "-l" prefixes "R: ").
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace tck::report {

// Where one rank's restore spent its time, in milliseconds, summed over the
// attempts (a bad copy makes another). They add up to about Restore::ms.
struct RestoreBreakdown {  // where a rank's restore spent its time, and where its bytes came from
    double inventory_ms = 0;  // learning what every node store and the persistent tier hold (collectives)
    double plan_ms = 0;       // the plan's collectives: the persistent MANIFEST, the region-count check
    double move_ms = 0;       // bringing the shard into node memory: transport set-up, transfer, waiting for holders
    double verify_ms = 0;     // checksums (behind the transfer, or after it)
    double copy_ms = 0;       // copying into the regions (restore; 0 in a fetch)
    double agree_ms = 0;      // the job's agreement after each attempt: waiting for the slowest rank
    // Where the bytes of the restored version came from, by source (an
    // elastic restore reads several saved shards, from anywhere), and the
    // world size that saved it (0: unknown, a line without the field).
    std::uint64_t local_bytes = 0;       // this node's store
    std::uint64_t peer_bytes = 0;        // other nodes' stores, over the transport or MPI
    std::uint64_t persistent_bytes = 0;  // the persistent tier
    std::uint64_t saved_world = 0;
};

// One rank's restore.
struct Restore {
    int rank = -1;
    std::string node;          // host name, as gethostname gives it (no spaces)
    std::uint64_t version = 0;  // 0 with source "none"
    std::string source;        // local, peer, persistent or none
    std::uint64_t bytes = 0;   // this rank's shard, manifest included
    double ms = 0;             // from the call to its return (fetch + restore when both ran)
    std::string via;           // how the bytes came: store, ucx, ofi, mpi, file or none
    RestoreBreakdown parts;    // all 0 when the line has none
};

std::string format_restore(const Restore &r);
std::optional<Restore> parse_restore(const std::string &line);

std::string format_commit(std::uint64_t version);
// A schedule decision (rank 0, after each save whose program asks due()):
// "tierckpt-report schedule " and the decision's key=value fields
// (schedule::describe).
std::string format_schedule(const std::string &fields);
// The fields of a schedule line; nullopt for any other line.
std::optional<std::string> parse_schedule(const std::string &line);
std::optional<std::uint64_t> parse_commit(const std::string &line);

}  // namespace tck::report
