// Writes the seed corpus of fuzz_store: real node stores, made by the real
// runtime (libtierckpt's C API) as a one-rank job: a fresh store, a store
// with two committed versions of a small state, and one whose job names a
// persistent directory. Kept small (a few slots) so that the fuzzer can
// afford to mutate them whole.
//
//   make_store_seeds OUTDIR
#include <mpi.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "tierckpt/tierckpt.h"

namespace {

bool check(tierckpt_status_t rc, const char *what) {
    if (rc == TIERCKPT_OK) return true;
    std::fprintf(stderr, "make_store_seeds: %s: %s\n", what, tierckpt_last_error());
    return false;
}

// One store: `versions` saves of a 3-region state; persist_dir optional;
// layout: the weights a slice (the whole array, one rank) and the step
// replicated, so that shards carry the manifest's second form.
bool make(const std::string &out, const std::string &name, int versions, const std::string &persist_dir,
          bool layout = false) {
    std::string store = "/dev/shm/tck-seed-" + std::to_string(::getpid()) + "-" + name;
    tierckpt_options_t *o = tierckpt_options_new();
    bool ok = check(tierckpt_options_set(o, "store", store.c_str()), "store") &&
              check(tierckpt_options_set(o, "store_bytes", "56K"), "store_bytes") &&
              check(tierckpt_options_set(o, "replicas", "0"), "replicas") &&
              check(tierckpt_options_set(o, "job_id", "4242"), "job_id") &&
              check(tierckpt_options_set(o, "cuda", "no"), "cuda");
    if (ok && !persist_dir.empty()) {
        ok = check(tierckpt_options_set(o, "persist_dir", persist_dir.c_str()), "persist_dir") &&
             check(tierckpt_options_set(o, "persist_every", "1"), "persist_every");
    }
    tierckpt_t *ck = nullptr;
    ok = ok && check(tierckpt_open(o, &ck), "open");
    tierckpt_options_free(o);
    std::vector<float> weights(200);
    std::uint64_t step = 0;
    char tag[24] = "seed";
    const std::size_t wbytes = weights.size() * sizeof(float);
    ok = ok &&
         check(layout ? tierckpt_register_slice(ck, "weights", weights.data(), wbytes, 0, wbytes)
                      : tierckpt_register(ck, "weights", weights.data(), wbytes),
               "register") &&
         check(layout ? tierckpt_register_replicated(ck, "step", &step, sizeof step)
                      : tierckpt_register(ck, "step", &step, sizeof step),
               "register") &&
         check(tierckpt_register(ck, "tag", tag, sizeof tag), "register");
    for (int v = 1; ok && v <= versions; ++v) {
        for (std::size_t i = 0; i < weights.size(); ++i) weights[i] = static_cast<float>(i * v) * 0.5f;
        step = static_cast<std::uint64_t>(v);
        ok = check(tierckpt_save(ck, step), "save") && check(tierckpt_wait(ck), "wait");
    }
    if (ck) ok = check(tierckpt_close(ck), "close") && ok;
    if (ok) {
        std::ifstream in(store, std::ios::binary);
        std::ofstream(out + "/" + name, std::ios::binary) << in.rdbuf();
    }
    ::unlink(store.c_str());
    return ok;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: make_store_seeds OUTDIR\n");
        return 2;
    }
    MPI_Init(&argc, &argv);
    std::string out = argv[1];
    char tmpl[] = "/dev/shm/tck-seed-persist-XXXXXX";
    bool ok = ::mkdtemp(tmpl) != nullptr;
    ok = ok && make(out, "fresh", 0, "") && make(out, "two-versions", 2, "") && make(out, "persist", 1, tmpl) &&
         make(out, "layout", 2, "", true);
    if (ok) (void)!std::system(("rm -rf '" + std::string(tmpl) + "'").c_str());
    MPI_Finalize();
    return ok ? 0 : 1;
}
