// `tierckpt plan`'s model arithmetic (plan_model.hpp).
#include "plan_model.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

#include "common/parse.hpp"

namespace tck::cli {

namespace {

struct DtypeName {
    const char *name;
    unsigned bytes;
};
constexpr DtypeName kDtypes[] = {
    {"fp64", 8}, {"float64", 8}, {"double", 8}, {"fp32", 4},   {"float32", 4}, {"float", 4},
    {"bf16", 2}, {"bfloat16", 2}, {"fp16", 2},  {"float16", 2}, {"half", 2},    {"fp8", 1},
    {"e4m3", 1}, {"e5m2", 1},    {"int8", 1},  {"none", 0},
};

// a * b, or false when it does not fit in 64 bits.
bool mul(std::uint64_t a, std::uint64_t b, std::uint64_t &out) {
    if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a) return false;
    out = a * b;
    return true;
}

}  // namespace

Result<unsigned> dtype_bytes(std::string_view name) {
    for (const auto &d : kDtypes) {
        if (name == d.name) return d.bytes;
    }
    return error(TIERCKPT_ERR_INVALID,
                 "unknown dtype '{}'; use one of fp32 (float32), bf16 (bfloat16), fp16 (float16, half), fp8 (e4m3, "
                 "e5m2), fp64, int8, none",
                 std::string(name));
}

Result<ParamCount> count_params(const Transformer &t) {
    if (t.layers == 0 || t.hidden == 0 || t.vocab == 0) {
        return error(TIERCKPT_ERR_INVALID, "a model shape needs --layers, --hidden and --vocab, each above 0");
    }
    if (t.experts == 0) return error(TIERCKPT_ERR_INVALID, "--experts must be at least 1 (1: a dense model)");
    const std::uint64_t heads = t.heads ? t.heads : std::max<std::uint64_t>(1, t.hidden / 128);
    if (t.hidden % heads != 0) {
        return error(TIERCKPT_ERR_INVALID, "--heads={} does not divide --hidden={}", heads, t.hidden);
    }
    const std::uint64_t kv = t.kv_heads ? t.kv_heads : heads;
    if (kv > heads || heads % kv != 0) {
        return error(TIERCKPT_ERR_INVALID, "--kv-heads={} must divide --heads={}", kv, heads);
    }
    const std::uint64_t head_dim = t.hidden / heads;
    const std::uint64_t ffn = t.ffn ? t.ffn : 4 * t.hidden;
    // Bounded inputs keep every product below 2^64: reject what is not a
    // model (more than 10^15 parameters) before multiplying further.
    std::uint64_t hh, mlp, layer, all_layers, embed;
    bool ok = mul(t.hidden, t.hidden, hh) && mul(t.hidden, ffn, mlp) && mul(mlp, t.gated ? 3 : 2, mlp) &&
              mul(mlp, t.experts, mlp) && mul(t.hidden, t.vocab, embed);
    if (!ok || hh > 1e15 || mlp > 1e15 || embed > 1e15 || t.layers > 1000000) {
        return error(TIERCKPT_ERR_INVALID, "that shape has more than 10^15 parameters; check --hidden, --ffn, --vocab");
    }
    std::uint64_t attn = 2 * hh + 2 * t.hidden * kv * head_dim;
    std::uint64_t router = t.experts > 1 ? t.hidden * t.experts : 0;
    layer = attn + mlp + router + 2 * t.hidden;
    if (!mul(layer, t.layers, all_layers) || all_layers > 1e15) {
        return error(TIERCKPT_ERR_INVALID, "that shape has more than 10^15 parameters; check --layers");
    }
    ParamCount c;
    c.params = all_layers + embed * (t.tied_embeddings ? 1 : 2) + t.hidden;
    std::uint64_t per_layer_tensors = 4 + (t.gated ? 3 : 2) * t.experts + (t.experts > 1 ? 1 : 0) + 2;
    c.tensors = t.layers * per_layer_tensors + (t.tied_embeddings ? 1 : 2) + 1;
    return c;
}

Result<std::vector<Part>> checkpoint_parts(std::uint64_t params, const Precision &p) {
    auto w = dtype_bytes(p.weights);
    if (!w) return w.status();
    if (*w == 0) return error(TIERCKPT_ERR_INVALID, "--weights=none: a checkpoint holds the weights; give their dtype");
    auto m = dtype_bytes(p.master);
    if (!m) return m.status();
    auto mo = dtype_bytes(p.moments);
    if (!mo) return mo.status();
    unsigned nmoments;
    if (p.optimizer == "adam" || p.optimizer == "adamw") {
        nmoments = 2;  // exp_avg, exp_avg_sq
    } else if (p.optimizer == "sgd") {
        nmoments = 1;  // momentum_buffer
    } else if (p.optimizer == "none") {
        nmoments = 0;
    } else {
        return error(TIERCKPT_ERR_INVALID,
                     "unknown optimizer '{}'; use adam or adamw (two moments), sgd (momentum: one), none", p.optimizer);
    }
    std::vector<Part> parts;
    parts.push_back({"weights", p.weights, params * *w});
    if (*m) parts.push_back({"master weights", p.master, params * *m});
    if (nmoments && *mo) {
        parts.push_back({"optimizer moments", nmoments == 1 ? p.moments : "2 x " + p.moments,
                         params * *mo * nmoments});
    }
    return parts;
}

std::uint64_t per_rank(std::uint64_t bytes, std::uint64_t ranks) {
    return ranks ? bytes / ranks + (bytes % ranks ? 1 : 0) : bytes;
}

Result<std::uint64_t> parse_count(std::string_view text) {
    auto v = parse_scaled(text, "parameter count", {{'K', 1e3}, {'M', 1e6}, {'B', 1e9}, {'G', 1e9}, {'T', 1e12}},
                          "a count such as 70B, 8.03e9 or 405000000000 (K, M, B, T: powers of 1000)");
    if (!v) return v.status();
    if (*v < 1 || *v > 1e15) {
        return error(TIERCKPT_ERR_INVALID, "parameter count '{}': expected between 1 and 10^15", std::string(text));
    }
    return static_cast<std::uint64_t>(std::llround(*v));
}


}  // namespace tck::cli
