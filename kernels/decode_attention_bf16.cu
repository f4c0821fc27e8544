#include <algorithm>
#include <cstdint>

#include "kernels/cuda_check.hpp"
#include "kernels/decode_attention_bf16.cuh"
#include "kernels/decode_attention_bf16_gpu.hpp"
#include "kernels/merge_states_gpu.hpp"
#include "kernels/page_tile.cuh"

namespace ringkv {

int decode_attention_bf16_splits(int n_keys, int kv_heads) {
  const int sms = multiprocessor_count();
  const int wanted = (4 * sms + kv_heads - 1) / kv_heads;  // the one-warp blocks that fit: 4 per multiprocessor
  constexpr int kMinKeysPerSplit = 256;                    // below this, merging costs more than it saves
  return std::max(1, std::min(wanted, (n_keys + kMinKeysPerSplit - 1) / kMinKeysPerSplit));
}

namespace {
template <int HEAD_DIM, int GROUP>
void launch(const DecodeShape& s, const float* queries, const uint16_t* keys, const uint16_t* values, int splits,
            float* split_out, float* split_lse, cudaStream_t stream) {
  const auto kernel = kernels::decode_attention_bf16_kernel<HEAD_DIM, GROUP>;
  constexpr int kShared = kernels::bf16_shared_bytes<HEAD_DIM>();
  static const bool allowed = (kernels::allow_shared(kernel, kShared), true);  // once per process: decode runs it every layer
  (void)allowed;
  kernel<<<dim3(s.kv_heads, splits), 32, kShared, stream>>>(queries, keys, values, s.n_keys, s.device_keys, s.kv_heads, s.scale,
                                                           split_out, split_lse);
}

template <int HEAD_DIM>
void launch_group(const DecodeShape& s, const float* queries, const uint16_t* keys, const uint16_t* values, int splits,
                  float* split_out, float* split_lse, cudaStream_t stream) {
  switch (s.heads / s.kv_heads) {
    case 1: launch<HEAD_DIM, 1>(s, queries, keys, values, splits, split_out, split_lse, stream); break;
    case 2: launch<HEAD_DIM, 2>(s, queries, keys, values, splits, split_out, split_lse, stream); break;
    case 4: launch<HEAD_DIM, 4>(s, queries, keys, values, splits, split_out, split_lse, stream); break;
    case 8: launch<HEAD_DIM, 8>(s, queries, keys, values, splits, split_out, split_lse, stream); break;
    default: RINGKV_REQUIRE(false, "decode attention: heads / kv_heads must be 1, 2, 4 or 8");
  }
}
}  // namespace

void decode_attention_bf16_gpu(const DecodeShape& s, const float* queries, const uint16_t* keys, const uint16_t* values,
                               int splits, float* split_out, float* split_lse, float* out, float* lse, cudaStream_t stream) {
  RINGKV_REQUIRE(s.kv_heads > 0 && s.heads % s.kv_heads == 0, "decode attention: heads must be a multiple of kv_heads");
  RINGKV_REQUIRE(splits > 0 && s.n_keys >= 0, "decode attention: needs at least one split");
  RINGKV_REQUIRE(reinterpret_cast<uintptr_t>(keys) % 16 == 0 && reinterpret_cast<uintptr_t>(values) % 16 == 0,
                 "decode attention: the bf16 keys and values must be 16-byte aligned");
  if (s.head_dim == 128)
    launch_group<128>(s, queries, keys, values, splits, split_out, split_lse, stream);
  else if (s.head_dim == 64)
    launch_group<64>(s, queries, keys, values, splits, split_out, split_lse, stream);
  else
    RINGKV_REQUIRE(false, "decode attention: head_dim must be 64 or 128");
  RINGKV_CHECK_CUDA(cudaGetLastError());
  merge_states_gpu(splits, s.heads, s.head_dim, split_out, split_lse, out, lse, stream);
}

}  // namespace ringkv
