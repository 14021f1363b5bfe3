// `tierckpt plan`'s arithmetic on a model: parameters from a transformer's
// shape, bytes per checkpoint part from dtypes and the optimizer, and how
// they divide over ranks and nodes. Pure (unit-tested); plan_cmd.cpp
// parses the command line and prints.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"

namespace tck::cli {

// Bytes per element of a dtype named as PyTorch names it (fp32/float32,
// bf16/bfloat16, fp16/float16/half, fp8 (e4m3, e5m2), fp64, int8, none).
// TIERCKPT_ERR_INVALID naming the accepted names otherwise.
Result<unsigned> dtype_bytes(std::string_view name);

// A decoder-only transformer as its config names it (Llama's, Mixtral's):
// every layer has attention (query and output heads x head_dim squared,
// key and value kv_heads x head_dim each), an MLP of `ffn` width (three
// matrices when gated, SwiGLU; two otherwise) per expert, a router when
// experts > 1, and two norms; then the token embedding, the output
// projection (unless tied) and a final norm. No biases.
struct Transformer {
    std::uint64_t layers = 0;
    std::uint64_t hidden = 0;
    std::uint64_t ffn = 0;      // 0: 4 * hidden
    std::uint64_t heads = 0;    // 0: hidden / 128
    std::uint64_t kv_heads = 0; // 0: heads (no grouped-query attention)
    std::uint64_t vocab = 0;
    std::uint64_t experts = 1;
    bool gated = true;
    bool tied_embeddings = false;
};

struct ParamCount {
    std::uint64_t params = 0;
    std::uint64_t tensors = 0;  // how many tensors hold them (a state dict's entries)
};
// Checks the shape (layers, hidden, vocab > 0; heads dividing hidden;
// kv_heads dividing heads) and counts. Llama 3 70B (80, 8192, 28672, 64,
// 8, 128256) gives 70,553,706,496 parameters.
Result<ParamCount> count_params(const Transformer &t);

// What one checkpoint holds: weights, optional master weights and the
// optimizer's moments, each params x dtype bytes.
struct Part {
    std::string name;   // weights, master weights, optimizer moments
    std::string dtype;  // e.g. "bf16", "2 x fp32"
    std::uint64_t bytes = 0;  // the whole model's
};
struct Precision {
    std::string weights = "bf16";
    std::string master = "none";
    std::string optimizer = "adam";  // adam, adamw (2 moments), sgd (momentum: 1), none
    std::string moments = "fp32";
};
// TIERCKPT_ERR_INVALID for an unknown dtype or optimizer.
Result<std::vector<Part>> checkpoint_parts(std::uint64_t params, const Precision &p);

// Ceiling of bytes / ranks: what one rank of a checkpoint sharded evenly
// over `ranks` saves (FSDP/ZeRO-3, or tensor and pipeline parallelism with
// a distributed optimizer).
std::uint64_t per_rank(std::uint64_t bytes, std::uint64_t ranks);

// "70B", "8.03e9", "405000000000": a parameter count. Suffixes K, M, B
// (or G), T are powers of 1000.
Result<std::uint64_t> parse_count(std::string_view text);

}  // namespace tck::cli
