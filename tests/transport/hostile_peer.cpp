// A process that reaches a rank's endpoint but is not of its job. Three
// ranks under mpirun, each with its own transport (ucx or ofi) over TCP:
// ranks 0 and 1 are the job (one token), rank 2 is the outsider (it knows
// their addresses, as anything on the network can learn them, but not the
// job's token). The outsider poses as rank 0: it sends rank 1 control
// messages and, over UCX, asks rank 1 for bytes of its store; rank 1 must
// act on none of it, while rank 0's own message and read go through.
// Prints ":test-result: PASS|FAIL name" lines from rank 1 (tests/run counts
// them) and exits non-zero when one failed:
//   mpirun -n 3 hostile_peer ucx|ofi
#include <mpi.h>
#include <sys/mman.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "lib/transport/transport.hpp"

namespace {

constexpr std::size_t kStore = 8u << 20;
constexpr std::uint64_t kJobToken = 0x6a6f62746f6b656eull;
constexpr std::uint64_t kOutsiderToken = 0x6f75747369646572ull;

[[noreturn]] void die(const std::string &what) {
    std::fprintf(stderr, "hostile_peer: %s\n", what.c_str());
    MPI_Abort(MPI_COMM_WORLD, 1);
    std::abort();
}

// Keeps the transport going (a holder serves reads in its progress) until
// every rank reached the barrier; returns the messages received meanwhile.
std::vector<tck::TransportMsg> serve_until_all_arrive(tck::Transport &t) {
    std::vector<tck::TransportMsg> got;
    MPI_Request req;
    MPI_Ibarrier(MPI_COMM_WORLD, &req);
    for (int done = 0; !done;) {
        tck::TransportMsg m;
        while (t.poll(m)) got.push_back(m);
        t.wait(-1, 1);
        MPI_Test(&req, &done, MPI_STATUS_IGNORE);
    }
    return got;
}

}  // namespace

int main(int argc, char **argv) {
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    int rank = 0, size = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    std::string kind = argc > 1 ? argv[1] : "ucx";
    if (size != 3) die("run with 3 ranks");
    auto *store = static_cast<std::uint8_t *>(
        ::mmap(nullptr, kStore, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0));
    std::memset(store, 'a' + rank, kStore);
    auto t = tck::make_transport(kind);
    if (!t) die(t.status().message());
    auto blob = (*t)->local_blob(store, kStore);
    if (!blob) die(blob.status().message());
    int len = static_cast<int>(blob->size());
    std::vector<int> lens(3), displs(3);
    MPI_Allgather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, MPI_COMM_WORLD);
    for (int i = 1; i < 3; ++i) displs[i] = displs[i - 1] + lens[i - 1];
    std::vector<std::uint8_t> all(static_cast<std::size_t>(displs[2] + lens[2]));
    MPI_Allgatherv(blob->data(), len, MPI_BYTE, all.data(), lens.data(), displs.data(), MPI_BYTE, MPI_COMM_WORLD);
    std::vector<std::vector<std::uint8_t>> blobs;
    for (int i = 0; i < 3; ++i) blobs.emplace_back(all.begin() + displs[i], all.begin() + displs[i] + lens[i]);
    if (auto st = (*t)->set_peers(blobs, rank, rank == 2 ? kOutsiderToken : kJobToken); !st) die(st.message());

    // 1. The outsider, posing as rank 0.
    bool outsider_read = false;
    if (rank == 2) {
        tck::TransportMsg m{};
        m.type = tck::TransportMsg::ready;
        m.from = 0;
        m.owner = 0;
        m.version = 7;
        m.bytes = 4096;
        m.nregions = 1;
        for (int i = 0; i < 3; ++i) (void)(*t)->send(1, m);
        m.type = tck::TransportMsg::bye;
        (void)(*t)->send(1, m);
        if (kind == "ucx") {
            // Over UCX a read is a request the holder answers: refused,
            // nothing arrives (the libfabric store is guarded by its key,
            // which only the job's ranks learn).
            std::vector<std::uint8_t> into(1u << 20, 0);
            std::memcpy(store, into.data(), into.size());
            outsider_read = (*t)->get(1, 0, store, into.size(), 1500, nullptr).is_ok() || store[0] == 'b';
        }
    }
    auto first = serve_until_all_arrive(**t);

    // 2. The job's own rank 0: a message and a read.
    bool member_read = false;
    if (rank == 0) {
        tck::TransportMsg m{};
        m.type = tck::TransportMsg::heartbeat;
        m.from = 0;
        if (auto st = (*t)->send(1, m); !st) die(st.message());
        member_read = (*t)->get(1, 4096, store + 4096, 1u << 20, 30000, nullptr).is_ok() && store[4096] == 'b' &&
                      store[4096 + (1u << 20) - 1] == 'b';
    }
    // The heartbeat may come in after the barrier: a moment more for it.
    auto second = serve_until_all_arrive(**t);
    if (rank == 1) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        while (std::chrono::steady_clock::now() < deadline) {
            tck::TransportMsg m;
            while ((*t)->poll(m)) second.push_back(m);
            (*t)->wait(-1, 10);
        }
    }
    int flags[2] = {outsider_read ? 1 : 0, member_read ? 1 : 0}, maxed[2] = {0, 0};
    MPI_Allreduce(flags, maxed, 2, MPI_INT, MPI_MAX, MPI_COMM_WORLD);

    int failed = 0;
    if (rank == 1) {
        auto result = [&](bool ok, const std::string &name) {
            std::printf(":test-result: %s %s: %s\n", ok ? "PASS" : "FAIL", kind.c_str(), name.c_str());
            failed += ok ? 0 : 1;
        };
        std::size_t heartbeats = 0, others = 0;
        for (const auto &m : first) others += 1, (void)m;
        for (const auto &m : second) (m.type == tck::TransportMsg::heartbeat ? heartbeats : others) += 1;
        result(others == 0, "an outsider's messages posing as rank 0 reach nothing (" + std::to_string(others) +
                                " delivered)");
        result(heartbeats == 1, "the job's own message arrives (" + std::to_string(heartbeats) + ")");
        if (kind == "ucx") result(maxed[0] == 0, "an outsider's pull request is not served");
        result(maxed[1] == 1, "the job's own read returns the store's bytes");
        std::fflush(stdout);
    }
    MPI_Bcast(&failed, 1, MPI_INT, 1, MPI_COMM_WORLD);
    t->reset();
    MPI_Finalize();
    return failed ? 1 : 0;
}
