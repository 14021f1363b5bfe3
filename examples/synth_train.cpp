// tierckpt-synth-train: a training loop over deterministic state, for the
// demo, the tests and the benchmarks. See tierckpt-synth-train(1).
//
// Every rank owns --state-mib MiB of 64-bit words (--grow-mib from step
// --grow-at on). Each step updates every word with a function of the step;
// the state is saved as version = step every --ckpt-every steps, or when
// the runtime's schedule says a save is due (--ckpt-every auto or a
// duration: tierckpt_due). On start the program restores the newest
// checkpoint and goes on from there, so the final digest is the same
// whether the run went straight through or was killed and resumed.
#include <mpi.h>
#include <unistd.h>

#include <chrono>
#include <cerrno>
#include <cctype>
#include <csignal>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tierckpt/tierckpt.hpp"

namespace {

constexpr int kExitPeer = TIERCKPT_EXIT_PEER_LOST;  // a peer failed: relaunch

struct Args {
    std::uint64_t state_mib = 16;
    std::uint64_t steps = 20;
    std::uint64_t ckpt_every = 5;
    std::string ckpt_schedule;  // "auto" or a duration: the runtime's due() decides
    std::string node_mtbf;      // for auto: a node's MTBF (otherwise srun's, or the default)
    std::uint64_t grow_at = 0;  // the step from which the state holds grow_mib MiB (0: never)
    std::uint64_t grow_mib = 0;
    std::uint64_t kill_step = 0;  // --kill-at STEP:RANK: that rank kills itself (SIGKILL) at that step
    int kill_rank = -1;
    std::uint64_t step_ms = 0;
    bool wait_commit = false;  // every save waits for its commit
    bool sliced = false;       // --layout sliced: the state is a slice of one global array
    std::uint64_t global_mib = 0;  // --global-mib: that array's size, cut over however many ranks run (0: state_mib a rank)
    std::string store;        // without Slurm: a store path
    std::string store_bytes;  // and its size
    std::string persist;      // without Slurm: a persistent directory
    std::string persist_every, persist_keep;
};

[[noreturn]] void usage(int rc) {
    std::fprintf(rc ? stderr : stdout,
                 "Usage: tierckpt-synth-train [--state-mib M] [--steps S] [--ckpt-every K|auto|DURATION]\n"
                 "                            [--node-mtbf DURATION] [--step-ms T] [--grow-at STEP --grow-mib M]\n"
                 "                            [--kill-at STEP:RANK] [--layout opaque|sliced [--global-mib G]]\n"
                 "                            [--wait-commit] [--store PATH --store-bytes SIZE]\n"
                 "                            [--persist DIR [--persist-every N] [--persist-keep K]]\n"
                 "Run under srun --mpi=pmix --ckpt-mem=SIZE (or mpirun with --store). See tierckpt-synth-train(1).\n");
    std::exit(rc);
}

std::uint64_t number(const char *opt, const char *v) {
    char *end = nullptr;
    errno = 0;
    unsigned long long n = std::strtoull(v ? v : "", &end, 10);
    if (!v || !*v || *end || errno || v[0] == '-') {
        std::fprintf(stderr, "tierckpt-synth-train: %s needs a whole number, got '%s'\n", opt, v ? v : "");
        usage(2);
    }
    return n;
}

Args parse(int argc, char **argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        std::string o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : nullptr;
        if (o == "-h" || o == "--help") usage(0);
        else if (o == "--state-mib") a.state_mib = number("--state-mib", v), ++i;
        else if (o == "--steps") a.steps = number("--steps", v), ++i;
        else if (o == "--ckpt-every" && v && (std::strcmp(v, "auto") == 0 || !std::isdigit(static_cast<unsigned char>(v[std::strlen(v) ? std::strlen(v) - 1 : 0]))))
            a.ckpt_schedule = v, ++i;
        else if (o == "--ckpt-every") a.ckpt_every = number("--ckpt-every", v), ++i;
        else if (o == "--node-mtbf" && v) a.node_mtbf = v, ++i;
        else if (o == "--kill-at" && v) {
            unsigned long long st = 0;
            int r = -1;
            char end = 0;
            if (std::sscanf(v, "%llu:%d%c", &st, &r, &end) != 2 || st == 0 || r < 0) {
                std::fprintf(stderr, "tierckpt-synth-train: --kill-at needs STEP:RANK, got '%s'\n", v);
                usage(2);
            }
            a.kill_step = st, a.kill_rank = r, ++i;
        } else if (o == "--grow-at") a.grow_at = number("--grow-at", v), ++i;
        else if (o == "--grow-mib") a.grow_mib = number("--grow-mib", v), ++i;
        else if (o == "--step-ms") a.step_ms = number("--step-ms", v), ++i;
        else if (o == "--wait-commit") a.wait_commit = true;
        else if (o == "--layout" && v && (std::strcmp(v, "opaque") == 0 || std::strcmp(v, "sliced") == 0))
            a.sliced = std::strcmp(v, "sliced") == 0, ++i;
        else if (o == "--global-mib") a.global_mib = number("--global-mib", v), ++i;
        else if (o == "--store" && v) a.store = v, ++i;
        else if (o == "--store-bytes" && v) a.store_bytes = v, ++i;
        else if (o == "--persist" && v) a.persist = v, ++i;
        else if (o == "--persist-every" && v) a.persist_every = v, ++i;
        else if (o == "--persist-keep" && v) a.persist_keep = v, ++i;
        else {
            std::fprintf(stderr, "tierckpt-synth-train: unknown option '%s'\n", o.c_str());
            usage(2);
        }
    }
    if (a.state_mib == 0 || a.ckpt_every == 0) {
        std::fprintf(stderr, "tierckpt-synth-train: --state-mib and --ckpt-every must be at least 1\n");
        usage(2);
    }
    if (a.global_mib && !a.sliced) {
        std::fprintf(stderr, "tierckpt-synth-train: --global-mib needs --layout sliced\n");
        usage(2);
    }
    if (a.sliced && a.grow_at) {
        std::fprintf(stderr, "tierckpt-synth-train: --grow-at works with --layout opaque only\n");
        usage(2);
    }
    if ((a.grow_at == 0) != (a.grow_mib == 0) || (a.grow_mib && a.grow_mib < a.state_mib)) {
        std::fprintf(stderr, "tierckpt-synth-train: give --grow-at and --grow-mib together, --grow-mib at least "
                             "--state-mib\n");
        usage(2);
    }
    return a;
}

std::uint64_t splitmix(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// What a step does to the state: deterministic in (rank, step, word).
void step_state(std::vector<std::uint64_t> &w, std::uint64_t step) {
    const std::uint64_t add = splitmix(step);
    for (auto &x : w) x = x * 6364136223846793005ull + add;
}

// The state of rank at its start, words [from, to): new words get the same
// values whether the state started this large or grew to it.
void init_state(std::vector<std::uint64_t> &w, std::size_t from, int rank) {
    for (std::size_t i = from; i < w.size(); ++i) w[i] = splitmix((static_cast<std::uint64_t>(rank) << 40) + i);
}

// --layout sliced: word i of this rank's slice is word first + i of the
// global array, whose start values depend on the global index alone.
void init_slice(std::vector<std::uint64_t> &w, std::uint64_t first) {
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = splitmix((std::uint64_t{1} << 60) + first + i);
}

std::uint64_t digest(const std::vector<std::uint64_t> &w) {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (auto x : w) h = (h ^ x) * 0x100000001b3ull;
    return h;
}

// --layout sliced: the slice's part of a digest of the global array that
// does not depend on how it is cut (a sum over the global words, each mixed
// with its index; the ranks' parts add up).
std::uint64_t slice_digest(const std::vector<std::uint64_t> &w, std::uint64_t first) {
    std::uint64_t h = 0;
    for (std::size_t i = 0; i < w.size(); ++i) h += splitmix(w[i] ^ splitmix(first + i));
    return h;
}

// The schedule's newest decision, for the saved line (empty without one).
std::string schedule_text(tierckpt::Checkpointer &ckpt) {
    tierckpt_schedule_t d = ckpt.schedule();
    if (!d.decisions) return "";
    char buf[256];
    std::snprintf(buf, sizeof buf, " schedule=%s every=%" PRIu64 " bound=%s step_s=%.4f stall_s=%.4f commit_s=%.4f",
                  d.mode, d.steps, d.bound, d.step_s, d.stall_s, d.commit_s);
    return buf;
}

}  // namespace

int main(int argc, char **argv) {
    Args a = parse(argc, argv);
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);

    struct Meta {
        std::uint64_t step;
        std::uint64_t rank;
    } meta{0, static_cast<std::uint64_t>(rank)};
    // --layout sliced: rank r holds words [r * n, (r + 1) * n) of a global
    // array of size * n words, as a tensor cut evenly over the ranks; with
    // --global-mib, words [r * W / size, (r + 1) * W / size) of W, so that
    // the same array is cut over whatever number of ranks runs.
    const std::uint64_t per_rank_words = a.state_mib * (1ull << 20) / sizeof(std::uint64_t);
    const std::uint64_t global_words = a.global_mib ? a.global_mib * (1ull << 20) / sizeof(std::uint64_t)
                                                    : per_rank_words * static_cast<std::uint64_t>(size);
    const auto cut = [&](int r) { return global_words * static_cast<std::uint64_t>(r) / static_cast<std::uint64_t>(size); };
    const std::uint64_t first_word = a.global_mib ? cut(rank) : static_cast<std::uint64_t>(rank) * per_rank_words;
    std::vector<std::uint64_t> state(a.global_mib ? cut(rank + 1) - cut(rank) : per_rank_words);
    const std::uint64_t slice_bytes = state.size() * sizeof(std::uint64_t);
    if (a.sliced) init_slice(state, first_word);
    else init_state(state, 0, rank);
    auto register_state = [&](tierckpt::Checkpointer &ckpt) {
        if (a.sliced) {
            // The step is the same on every rank: replicated.
            ckpt.add_replicated("step", &meta.step, sizeof meta.step);
            ckpt.add_slice("state", state.data(), slice_bytes, first_word * sizeof(std::uint64_t),
                           global_words * sizeof(std::uint64_t));
        } else {
            ckpt.add("meta", &meta, sizeof meta);
            ckpt.add("state", state.data(), state.size() * sizeof(std::uint64_t));
        }
    };
    auto grow = [&](std::uint64_t mib) {
        const std::size_t old = state.size();
        state.resize(mib * (1ull << 20) / sizeof(std::uint64_t));
        init_state(state, old, rank);
    };

    int rc = 0;
    try {
        tierckpt::Options opts;
        if (!a.store.empty()) {
            opts.set("store", a.store);
            if (!a.store_bytes.empty()) opts.set("store_bytes", a.store_bytes);
            if (!a.persist.empty()) opts.set("persist_dir", a.persist);
            if (!a.persist_every.empty()) opts.set("persist_every", a.persist_every);
            if (!a.persist_keep.empty()) opts.set("persist_keep", a.persist_keep);
            if (!a.ckpt_schedule.empty()) opts.set("ckpt_interval", a.ckpt_schedule);
            if (!a.node_mtbf.empty()) opts.set("node_mtbf", a.node_mtbf);
        } else {
            // The program's own choices win over srun's --ckpt-interval and --ckpt-node-mtbf.
            // "auto" asks the runtime: srun --ckpt-interval's schedule (auto when unset).
            if (!a.ckpt_schedule.empty() && a.ckpt_schedule != "auto") {
                setenv("TIERCKPT_CKPT_INTERVAL", a.ckpt_schedule.c_str(), 1);
            }
            if (!a.node_mtbf.empty()) setenv("TIERCKPT_NODE_MTBF", a.node_mtbf.c_str(), 1);
        }
        tierckpt::Checkpointer ckpt(a.store.empty() ? nullptr : &opts);
        if (a.grow_at) {
            // The newest checkpoint may hold the grown state: learn its size
            // before registering (the restore below uses the fetched shard).
            if (ckpt.fetch()) {
                for (const auto &[name, bytes] : ckpt.fetched_regions()) {
                    if (name == "state" && bytes > state.size() * sizeof(std::uint64_t)) grow(a.grow_mib);
                }
            }
        }
        register_state(ckpt);

        if (auto v = ckpt.restore()) {
            std::printf("rank=%d restored version=%" PRIu64 " source=%s\n", rank, *v, ckpt.restore_source().c_str());
            if (meta.step != *v || (!a.sliced && meta.rank != static_cast<std::uint64_t>(rank))) {
                std::fprintf(stderr, "rank %d: restored meta step=%" PRIu64 " rank=%" PRIu64 " does not match\n",
                             rank, meta.step, meta.rank);
                MPI_Abort(MPI_COMM_WORLD, 3);
            }
        } else {
            std::printf("rank=%d restored none\n", rank);
        }
        std::fflush(stdout);

        const bool scheduled = !a.ckpt_schedule.empty();
        for (std::uint64_t s = meta.step + 1; s <= a.steps; ++s) {
            if (a.grow_at && s == a.grow_at) {
                // The model grows (a layer added, say): the next save holds more.
                grow(a.grow_mib);
                ckpt.unregister_all();
                register_state(ckpt);
            }
            if (s == a.kill_step && rank == a.kill_rank) {
                std::printf("rank=%d killed at step=%" PRIu64 "\n", rank, s);
                std::fflush(stdout);
                raise(SIGKILL);  // as a crashed process: no clean-up at all
            }
            step_state(state, s);
            if (a.step_ms) std::this_thread::sleep_for(std::chrono::milliseconds(a.step_ms));
            // A data-parallel step ends with the gradients' all-reduce: the
            // ranks leave each step together, as in a real job (a save's
            // collective then waits for no rank's earlier lag).
            std::uint64_t token = s, all = 0;
            MPI_Allreduce(&token, &all, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
            meta.step = s;
            if (scheduled ? ckpt.due(s) : s % a.ckpt_every == 0) {
                const auto t_call = std::chrono::steady_clock::now();
                ckpt.save(s);
                const double call_ms =
                    std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_call).count();
                if (a.wait_commit) ckpt.wait();
                tierckpt_stats_t st = ckpt.stats();
                // The slowest rank's stall, the most any rank was held up
                // by this save (stall + wait), and the longest save call
                // (what training sees: those and the save's collectives).
                double mine[3] = {st.stall_ms, st.stall_ms + st.wait_ms, call_ms}, worst[3] = {0, 0, 0};
                MPI_Reduce(mine, worst, 3, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
                if (rank == 0) {
                    std::printf("saved version=%" PRIu64 " stall_ms=%.2f wait_ms=%.2f blocked_ms=%.2f call_ms=%.2f bytes=%" PRIu64
                                " persisted=%" PRIu64 " persist_failures=%" PRIu64
                                " persist_status=%s committed=%" PRIu64 " superseded=%" PRIu64
                                " room_waits=%" PRIu64 "%s\n",
                                s, worst[0], st.wait_ms, worst[1], worst[2], st.bytes, st.persist_version, st.persist_failures,
                                tierckpt_status_string(static_cast<tierckpt_status_t>(st.persist_status)),
                                st.committed_version, st.superseded, st.room_waits, schedule_text(ckpt).c_str());
                    std::fflush(stdout);
                }
            }
        }
        ckpt.wait();
        tierckpt_stats_t st = ckpt.stats();
        if (rank == 0 && st.version) {
            std::printf("committed version=%" PRIu64 " commit_ms=%.2f checksum_ms=%.2f persisted=%" PRIu64
                        " persist_failures=%" PRIu64 "\n",
                        st.version, st.commit_ms, st.checksum_ms, st.persist_version, st.persist_failures);
        }
        ckpt.close();
    } catch (const tierckpt::Error &e) {
        std::fprintf(stderr, "tierckpt-synth-train: rank %d: %s\n", rank, e.what());
        // A peer that failed (a node lost, a partner silent) ends the step
        // with its own status, so that a relaunch can tell it apart.
        rc = e.code() == TIERCKPT_ERR_PEER ? kExitPeer : 1;
    }
    if (rc) MPI_Abort(MPI_COMM_WORLD, rc);

    std::uint64_t mine = a.sliced ? slice_digest(state, first_word) : digest(state);
    std::vector<std::uint64_t> all(static_cast<std::size_t>(size));
    MPI_Gather(&mine, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        std::uint64_t h = 0;
        if (a.sliced) {
            for (auto d : all) h += d;  // the same sum however the array is cut
        } else {
            for (auto d : all) h = splitmix(h ^ d);
        }
        std::printf("final steps=%" PRIu64 " digest=%016" PRIx64 "\n", meta.step, h);
        std::fflush(stdout);
    }
    MPI_Finalize();
    return 0;
}
