// make bench: the persistent tier. Lines as in bench_save.cpp:
//   bench NAME value=X unit=U reference=R ratio=X/R
//  - flush throughput (one rank's 1 GiB shard, from the node store to a
//    directory on the build tree's file system, O_DIRECT + fsync + rename)
//    against `dd oflag=direct conv=fsync` of the same bytes to the same
//    file system, in the same run;
//  - the save stall (copy into the node store) while a flush runs, against
//    the same saves with no persistent tier.
// TCK_BENCH_PERSIST_DIR: where to write (default: a new directory in the
// current directory).
#include <fcntl.h>
#include <mpi.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tierckpt/tierckpt.hpp"
#include "bench_util.hpp"

extern char **environ;

namespace {

using bench::now_ms;
using bench::report;

[[noreturn]] void die(const std::string &what) {
    std::fprintf(stderr, "bench_persist: %s\n", what.c_str());
    std::exit(1);
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// Runs argv (no shell); returns the wall time in ms.
double run(const std::vector<std::string> &args) {
    std::vector<char *> argv;
    for (const auto &a : args) argv.push_back(const_cast<char *>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = 0;
    double t0 = now_ms();
    if (::posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) die("cannot run " + args[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    double t = now_ms() - t0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) die(args[0] + " failed");
    return t;
}

}  // namespace

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    std::string dir;
    if (const char *d = std::getenv("TCK_BENCH_PERSIST_DIR")) {
        dir = d;
    } else {
        char cwd[4096];
        if (!::getcwd(cwd, sizeof cwd)) die("getcwd");
        std::string t = std::string(cwd) + "/tck-bench-persist-XXXXXX";
        std::vector<char> buf(t.begin(), t.end());
        buf.push_back('\0');
        if (!::mkdtemp(buf.data())) die("mkdtemp in the current directory");
        dir = buf.data();
    }
    const std::string store = "/dev/shm/tck-bench-pstore-" + std::to_string(::getpid());
    const std::string src = "/dev/shm/tck-bench-psrc-" + std::to_string(::getpid());
    const int reps = 3;

    // ---- flush throughput against dd oflag=direct
    {
        const std::size_t bytes = 1024ull << 20;
        std::vector<unsigned char> state(bytes);
        for (std::size_t i = 0; i < bytes; i += 512) state[i] = static_cast<unsigned char>(i >> 9);
        {  // the same bytes in a tmpfs file, for dd
            int fd = ::open(src.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
            if (fd < 0 || ::write(fd, state.data(), bytes) != static_cast<ssize_t>(bytes)) die("writing " + src);
            ::close(fd);
        }
        double best_flush = 1e30, best_dd = 1e30;
        for (int r = 0; r < reps; ++r) {
            std::string pdir = dir + "/flush" + std::to_string(r);
            {
                tierckpt::Options o;
                o.set("store", store).set("store_bytes", std::to_string(2 * bytes + (64u << 20)));
                o.set("persist_dir", pdir).set("persist_every", "1").set("persist_keep", "1");
                tierckpt::Checkpointer ck(&o);
                ck.add("state", state.data(), bytes);
                ck.save(1);
                ck.wait();  // commits version 1: its flush starts
                while (ck.stats().persist_version != 1) {
                    std::this_thread::sleep_for(std::chrono::milliseconds(2));
                    ck.wait();  // settles the flush once written
                    if (ck.stats().persist_failures) die("the flush failed");
                }
                best_flush = std::min(best_flush, ck.stats().persist_ms);
                ck.close();
            }
            ::unlink(store.c_str());
            std::string out = dir + "/dd" + std::to_string(r);
            best_dd = std::min(best_dd, run({"dd", "if=" + src, "of=" + out, "bs=16M", "oflag=direct",
                                             "conv=fsync", "status=none"}));
            ::unlink(out.c_str());
            run({"rm", "-rf", pdir});
        }
        ::unlink(src.c_str());
        double gbs = static_cast<double>(bytes) / best_flush / 1e6, dd_gbs = static_cast<double>(bytes) / best_dd / 1e6;
        report("persist_flush_throughput_1GiB", gbs, "GB/s", dd_gbs);
    }

    // ---- the save stall with a flush running, against no persistent tier
    {
        const std::size_t bytes = 256ull << 20;
        std::vector<unsigned char> state(bytes);
        for (std::size_t i = 0; i < bytes; i += 4096) state[i] = static_cast<unsigned char>(i >> 12);
        auto stalls = [&](bool persist) {
            std::vector<double> out;
            tierckpt::Options o;
            o.set("store", store).set("store_bytes", std::to_string(4 * bytes + (64u << 20)));
            if (persist) o.set("persist_dir", dir + "/stall").set("persist_every", "1").set("persist_keep", "1");
            tierckpt::Checkpointer ck(&o);
            ck.add("state", state.data(), bytes);
            for (int v = 1; v <= 12; ++v) {
                ck.save(static_cast<std::uint64_t>(v));
                if (v > 2) out.push_back(ck.stats().stall_ms);  // the first saves touch new slots
                std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a training step
            }
            ck.close();
            ::unlink(store.c_str());
            return out;
        };
        std::vector<double> off, on;
        for (int r = 0; r < reps; ++r) {
            auto a = stalls(false);
            auto b = stalls(true);
            off.insert(off.end(), a.begin(), a.end());
            on.insert(on.end(), b.begin(), b.end());
        }
        run({"rm", "-rf", dir + "/stall"});
        report("save_stall_flushing_256MiB", median(on), "ms", median(off));
    }
    if (!std::getenv("TCK_BENCH_PERSIST_DIR")) ::rmdir(dir.c_str());
    MPI_Finalize();
    return 0;
}
