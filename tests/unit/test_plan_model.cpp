// tierckpt plan's model arithmetic (cli/plan_model.hpp): parameter counts
// of published models, the bytes of each checkpoint part, bad input.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>

#include "cli/plan_model.hpp"
#include "common/parse.hpp"

using namespace tck::cli;
using namespace tck;

namespace {
Transformer llama3_70b() {
    Transformer t;
    t.layers = 80;
    t.hidden = 8192;
    t.ffn = 28672;
    t.heads = 64;
    t.kv_heads = 8;
    t.vocab = 128256;
    return t;
}
}  // namespace

TEST_CASE("parameter counts of published shapes", "[plan]") {
    auto c = count_params(llama3_70b());
    REQUIRE(c);
    CHECK(c->params == 70553706496ull);  // Llama 3 70B's config: 70,553,706,496
    CHECK(c->tensors == 80 * 9 + 3);
    Transformer t8 = llama3_70b();
    t8.layers = 32;
    t8.hidden = 4096;
    t8.ffn = 14336;
    t8.heads = 32;
    CHECK(count_params(t8)->params == 8030261248ull);  // Llama 3 8B
    // Mixtral 8x7B: eight experts per layer and a router: 46,702,792,704.
    Transformer moe = t8;
    moe.vocab = 32000;
    moe.experts = 8;
    CHECK(count_params(moe)->params == 46702792704ull);
}

TEST_CASE("Llama 3 70B's quoted checkpoint sizes: about 130 GB of weights, 521 GB of optimizer state", "[plan]") {
    // The quoted figures are binary gigabytes of bf16 weights (2 bytes per
    // parameter) and Adam's two fp32 moments (8 bytes per parameter).
    auto parts = checkpoint_parts(count_params(llama3_70b())->params, Precision{});
    REQUIRE(parts);
    REQUIRE(parts->size() == 2);
    CHECK((*parts)[0].name == "weights");
    CHECK((*parts)[0].bytes == 141107412992ull);
    CHECK((*parts)[1].dtype == "2 x fp32");
    CHECK((*parts)[1].bytes == 564429651968ull);
    const double gib = 1024.0 * 1024 * 1024;
    CHECK(std::abs((*parts)[0].bytes / gib - 130) / 130 < 0.015);
    CHECK(std::abs((*parts)[1].bytes / gib - 521) / 521 < 0.015);
    // With fp32 master weights, a third part of 4 bytes per parameter.
    Precision mixed;
    mixed.master = "fp32";
    parts = checkpoint_parts(1000, mixed);
    REQUIRE(parts->size() == 3);
    CHECK((*parts)[1].bytes == 4000);
    // SGD keeps one moment.
    Precision sgd;
    sgd.optimizer = "sgd";
    CHECK(checkpoint_parts(1000, sgd)->back().bytes == 4000);
}

TEST_CASE("plan's bad input names the problem", "[plan]") {
    Precision p;
    p.weights = "fp12";
    auto r = checkpoint_parts(1000, p);
    REQUIRE_FALSE(r);
    CHECK(r.status().message().find("unknown dtype 'fp12'") != std::string::npos);
    Precision o;
    o.optimizer = "lion2";
    CHECK(checkpoint_parts(1000, o).status().message().find("unknown optimizer") != std::string::npos);
    Transformer t = llama3_70b();
    t.kv_heads = 7;
    CHECK_FALSE(count_params(t));
    t = llama3_70b();
    t.heads = 3;
    CHECK_FALSE(count_params(t));
    CHECK_FALSE(count_params(Transformer{}));
    CHECK_FALSE(parse_count("0"));
    CHECK_FALSE(parse_count("seventy"));
    CHECK_FALSE(parse_duration("-3h"));
    CHECK_FALSE(parse_duration("3w"));
}

TEST_CASE("counts, durations and per-rank shares", "[plan]") {
    CHECK(*parse_count("70B") == 70000000000ull);
    CHECK(*parse_count("8.03e9") == 8030000000ull);
    CHECK(*parse_count("405000000000") == 405000000000ull);
    CHECK(*parse_duration("264d") == 264 * 86400.0);
    CHECK(*parse_duration("90m") == 5400);
    CHECK(*parse_duration("1.5") == 1.5);
    CHECK(std::isinf(*parse_duration("inf")));
    CHECK(per_rank(10, 3) == 4);
    CHECK(per_rank(12, 3) == 4);
}
