// The GPU tier's logic that needs no GPU: piece planning, the path choice,
// and the no-device behaviour of a CUDA build (every pointer is host
// memory, registering the store fails with a reason, never a crash). The
// copies themselves are tested on a GPU: tests/gpu/.
#include "config.h"

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "lib/cuda_stage.hpp"
#include "tierckpt/tierckpt.h"

using tck::cuda::Path;
using tck::cuda::Piece;
using tck::cuda::plan_pieces;

TEST_CASE("pieces cover the bytes exactly, in order, none larger than asked", "[cuda]") {
    for (std::uint64_t bytes : {0ull, 1ull, 4095ull, 4096ull, 4097ull, 3ull * 4096, 10ull * 4096 + 17}) {
        auto pieces = plan_pieces(bytes, 4096);
        std::uint64_t next = 0;
        for (const Piece &p : pieces) {
            CHECK(p.offset == next);
            CHECK(p.bytes > 0);
            CHECK(p.bytes <= 4096);
            next += p.bytes;
        }
        CHECK(next == bytes);
        CHECK(pieces.size() == (bytes + 4095) / 4096);
    }
    CHECK(plan_pieces(100, 0).empty());
    auto big = plan_pieces((130ull << 20) + 7, tck::cuda::kPieceBytes);
    REQUIRE(big.size() == 3);
    CHECK(big[2].offset == 128ull << 20);
    CHECK(big[2].bytes == (2ull << 20) + 7);
}

TEST_CASE("the staging path: host without device regions, direct with a registered store, else bounce", "[cuda]") {
    CHECK(tck::cuda::choose_path(false, false) == Path::host);
    CHECK(tck::cuda::choose_path(false, true) == Path::host);
    CHECK(tck::cuda::choose_path(true, true) == Path::direct);
    CHECK(tck::cuda::choose_path(true, false) == Path::bounce);
    CHECK(std::string(tck::cuda::path_name(Path::host)) == "host");
    CHECK(std::string(tck::cuda::path_name(Path::direct)) == "cuda-direct");
    CHECK(std::string(tck::cuda::path_name(Path::bounce)) == "cuda-bounce");
}

TEST_CASE("the CUDA tier is listed in the features exactly when it is built", "[cuda]") {
    std::string f = tierckpt_features();
#ifdef TCK_HAVE_CUDA
    CHECK(tck::cuda::built_with_cuda());
    CHECK(f.find("cuda") != std::string::npos);
#else
    CHECK_FALSE(tck::cuda::built_with_cuda());
    CHECK(f.find("cuda") == std::string::npos);
#endif
}

TEST_CASE("host memory is host memory, with or without CUDA, a driver or a device", "[cuda]") {
    std::vector<unsigned char> heap(1 << 20, 7);
    static unsigned char data[4096];
    int stack = 0;
    for (const void *p : {static_cast<const void *>(heap.data()), static_cast<const void *>(data),
                          static_cast<const void *>(&stack), static_cast<const void *>(nullptr)}) {
        auto info = tck::cuda::classify(p);
        CHECK_FALSE(info.device);
        CHECK(info.device_id == -1);
    }
}

TEST_CASE("without a device the stager falls back and says why, and refuses nothing it was not asked", "[cuda]") {
    std::string why;
    int n = tck::cuda::device_count(&why);
    if (n > 0) {
        SUCCEED("a CUDA device is present: tests/gpu/ covers the stager");
        return;
    }
    CHECK_FALSE(why.empty());
    std::vector<unsigned char> store(1 << 20);
    tck::cuda::Stager s;
    s.register_store(store.data(), store.size(), false);
    CHECK_FALSE(s.store_registered());
    CHECK_FALSE(s.fallback_reason().empty());
    CHECK(s.finish().is_ok());
    // No device: a copy is an error with a message, never a crash.
    unsigned char dev_dummy[16] = {};
    auto st = s.to_host(store.data(), dev_dummy, sizeof dev_dummy, 0);
    CHECK_FALSE(st.is_ok());
    CHECK_FALSE(st.message().empty());
}

TEST_CASE("the forced bounce path (test hook) is reported as such", "[cuda]") {
    std::vector<unsigned char> store(1 << 16);
    tck::cuda::Stager s;
    s.register_store(store.data(), store.size(), true);
    CHECK_FALSE(s.store_registered());
#ifdef TCK_HAVE_CUDA
    CHECK(s.fallback_reason().find("TIERCKPT_TEST_CUDA_BOUNCE") != std::string::npos);
#endif
}

TEST_CASE("the cuda option takes yes or no, and names itself when it does not", "[cuda]") {
    tierckpt_options_t *o = tierckpt_options_new();
    REQUIRE(o);
    CHECK(tierckpt_options_set(o, "cuda", "no") == TIERCKPT_OK);
    CHECK(tierckpt_options_set(o, "cuda", "yes") == TIERCKPT_OK);
    CHECK(tierckpt_options_set(o, "cuda", "maybe") == TIERCKPT_ERR_INVALID);
    CHECK(std::string(tierckpt_last_error()).find("cuda") != std::string::npos);
    CHECK(tierckpt_options_set(o, "gpu", "yes") == TIERCKPT_ERR_INVALID);
    CHECK(std::string(tierckpt_last_error()).find("cuda") != std::string::npos);  // in the list of known keys
    tierckpt_options_free(o);
}
