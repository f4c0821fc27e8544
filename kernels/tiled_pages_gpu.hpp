#pragma once
// The pages and tails of decode attention's streams (a stream: one layer and KV head of one
// sequence), as the codecs whose kernels read pages into a shared tile (KVQuant, RVQ) take them.
#include <cstdint>

#include "kernels/decode_attention_tail_gpu.hpp"

namespace ringkv {

struct TiledPages {
  const uint8_t* const* key_pages = nullptr;    // device array [streams][n_pages] of device pointers (4-byte aligned)
  const uint8_t* const* value_pages = nullptr;  // device array [streams][n_pages]
  const float* inv_freq = nullptr;              // device [64]: the RoPE frequencies pre-RoPE keys are turned by
  int streams = 1, n_pages = 0;                 // page k of a stream holds positions 128k to 128k + 127
  TailsGpu tails{};  // optional bf16 tails, as in IntPagesGpu (keys after RoPE; 1, 2, 4 or 8 queries per KV head); keys null: none
};

}  // namespace ringkv
