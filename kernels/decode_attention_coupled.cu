#include <algorithm>

#include "kernels/cuda_check.hpp"
#include "kernels/decode_attention_coupled.cuh"
#include "kernels/decode_attention_coupled_gpu.hpp"
#include "kernels/decode_attention_tail_gpu.hpp"

namespace ringkv {

namespace {
// A split holds at least this many pages, so that building the lookup tables (a few dot products
// per table entry) stays small beside the keys.
constexpr int kLeastPagesPerSplit = 16;

kernels::CoupledKernelParams kernel_params(const CoupledPagesGpu& p, int pages_per_split) {
  return {p.key_pages,   p.value_pages, p.key_centroids,  p.value_centroids, p.n_pages,   p.page_tokens,
          pages_per_split, p.head_dim,  p.key_channels,   p.key_bits,        p.value_channels, p.value_bits};
}

template <int QP, int D, typename Code>
void launch(const kernels::CoupledKernelParams& params, int splits, int streams, int warps, size_t bytes, const float* queries,
            int n_queries, float scale, float* split_out, float* split_lse, cudaStream_t stream) {
  RINGKV_CHECK_CUDA(cudaFuncSetAttribute(kernels::decode_attention_coupled_kernel<QP, D, Code>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
  kernels::decode_attention_coupled_kernel<QP, D, Code><<<dim3(splits, streams), 32 * warps, bytes, stream>>>(
      params, queries, n_queries, scale, split_out, split_lse);
}

template <int D, typename Code>
void launch_for_queries(int qp, const kernels::CoupledKernelParams& params, int splits, int streams, int warps, size_t bytes,
                        const float* queries, int n_queries, float scale, float* split_out, float* split_lse,
                        cudaStream_t stream) {
  switch (qp) {
    case 4: launch<4, D, Code>(params, splits, streams, warps, bytes, queries, n_queries, scale, split_out, split_lse, stream); break;
    case 2: launch<2, D, Code>(params, splits, streams, warps, bytes, queries, n_queries, scale, split_out, split_lse, stream); break;
    default: launch<1, D, Code>(params, splits, streams, warps, bytes, queries, n_queries, scale, split_out, split_lse, stream); break;
  }
}

template <typename Code>
void launch_for_head_dim(int head_dim, int qp, const kernels::CoupledKernelParams& params, int splits, int streams, int warps,
                         size_t bytes, const float* queries, int n_queries, float scale, float* split_out, float* split_lse,
                         cudaStream_t stream) {
  if (head_dim == 128)
    launch_for_queries<128, Code>(qp, params, splits, streams, warps, bytes, queries, n_queries, scale, split_out, split_lse, stream);
  else
    launch_for_queries<64, Code>(qp, params, splits, streams, warps, bytes, queries, n_queries, scale, split_out, split_lse, stream);
}

// The fewest warps a block runs with: fewer leave too little to overlap the reads of codes.
constexpr int kFewestCoupledWarps = 4;
}  // namespace

int decode_attention_coupled_splits(const CoupledPagesGpu& p) {
  const int sms = multiprocessor_count();
  const int wanted = (2 * sms + p.streams - 1) / p.streams;  // about two blocks per multiprocessor
  const int most = (p.n_pages + kLeastPagesPerSplit - 1) / kLeastPagesPerSplit;
  return std::max(1, std::min(wanted, most));
}

void require_decode_attention_coupled(const CoupledPagesGpu& p) {
  RINGKV_REQUIRE(p.key_channels > 0 && p.value_channels > 0 && p.head_dim % p.key_channels == 0 &&
                     p.head_dim % p.value_channels == 0 && p.key_bits >= 1 && p.value_bits >= 1 && p.key_bits <= 16 &&
                     p.value_bits <= 16,
                 "decode_attention_coupled_gpu: channel groups must divide head_dim, codes of 1 to 16 bits");
  RINGKV_REQUIRE(static_cast<size_t>(p.page_tokens) * (p.head_dim / p.key_channels) * p.key_bits % 32 == 0 &&
                     static_cast<size_t>(p.page_tokens) * (p.head_dim / p.value_channels) * p.value_bits % 32 == 0,
                 "decode_attention_coupled_gpu: a page's codes must fill whole 32-bit words");
  RINGKV_REQUIRE(p.page_tokens % 32 == 0 && (p.head_dim == 64 || p.head_dim == 128),
                 "decode_attention_coupled_gpu: pages of a multiple of 32 tokens and head_dim 64 or 128");
  const size_t bytes = kernels::coupled_shared_bytes(kernel_params(p, 1), 1, kFewestCoupledWarps);
  const int most = max_shared_bytes_per_block();
  RINGKV_REQUIRE(bytes <= static_cast<size_t>(most),
                 "CQ decode attention with keys of " + std::to_string(p.key_channels) + " channels per group and " +
                     std::to_string(p.key_bits) + "-bit codes, values of " + std::to_string(p.value_channels) + " and " +
                     std::to_string(p.value_bits) + " bits, needs " + std::to_string(bytes) +
                     " bytes of shared memory for the key lookup table, the value centroids and the staged codes; the GPU "
                     "gives a block " + std::to_string(most) + " (fewer bits per code or more channels per group fit)");
}

void decode_attention_coupled_gpu(const CoupledPagesGpu& p, const float* queries, int n_queries, float scale, int splits,
                                  float* split_out, float* split_lse, float* out, float* lse, cudaStream_t stream) {
  RINGKV_REQUIRE(p.streams >= 1 && splits >= 1 && n_queries >= 1, "decode_attention_coupled_gpu: streams, splits and queries must be positive");
  require_decode_attention_coupled(p);
  const kernels::CoupledKernelParams params = kernel_params(p, (p.n_pages + splits - 1) / splits);
  const int most = max_shared_bytes_per_block();
  // As many of the queries at once as the tables allow (one code lookup serves them all), then as
  // many warps as the staged codes leave room for.
  int qp = n_queries >= 4 ? 4 : n_queries >= 2 ? 2 : 1, warps = kernels::kCoupledMostWarps;
  const auto fits = [&] { return kernels::coupled_shared_bytes(params, qp, warps) <= static_cast<size_t>(most); };
  for (;; qp /= 2) {
    for (warps = kernels::kCoupledMostWarps; warps > kFewestCoupledWarps && !fits();) warps /= 2;
    if (fits() || qp == 1) break;
  }
  const size_t bytes = kernels::coupled_shared_bytes(params, qp, warps);
  if (kernels::coupled_code_bytes(params) == 1)
    launch_for_head_dim<uint8_t>(p.head_dim, qp, params, splits, p.streams, warps, bytes, queries, n_queries, scale, split_out, split_lse, stream);
  else
    launch_for_head_dim<uint16_t>(p.head_dim, qp, params, splits, p.streams, warps, bytes, queries, n_queries, scale, split_out, split_lse, stream);
  RINGKV_CHECK_CUDA(cudaGetLastError());
  merge_splits_and_tails_gpu(splits, {p.tail_keys, p.tail_values, p.tail_tokens}, p.streams, queries, n_queries, p.head_dim, scale,
                             split_out, split_lse, out, lse, stream);
}

}  // namespace ringkv
