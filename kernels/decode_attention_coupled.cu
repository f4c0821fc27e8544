#include <algorithm>

#include "kernels/cuda_check.hpp"
#include "kernels/decode_attention_coupled.cuh"
#include "kernels/decode_attention_coupled_gpu.hpp"
#include "kernels/merge_states_gpu.hpp"

namespace ringkv {

namespace {
constexpr int kMaxSplitKeys = 4096;  // scores of one split in shared memory: 16 KiB

int max_pages_per_split(const CoupledPagesGpu& p) { return std::max(1, kMaxSplitKeys / std::max(1, p.page_tokens)); }

size_t shared_bytes(const CoupledPagesGpu& p, int pages_per_split) {
  const size_t key_table = static_cast<size_t>(p.head_dim / p.key_channels) << p.key_bits;
  const size_t value_mass = static_cast<size_t>(p.head_dim / p.value_channels) << p.value_bits;
  return (key_table + value_mass + static_cast<size_t>(pages_per_split) * p.page_tokens + kernels::kCoupledThreads / 32) *
         sizeof(float);
}
}  // namespace

int decode_attention_coupled_splits(const CoupledPagesGpu& p) {
  int device = 0, sms = 132;
  if (cudaGetDevice(&device) == cudaSuccess) cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  const int wanted = (4 * sms + p.streams - 1) / p.streams;  // about 4 waves
  const int fewest = (p.n_pages + max_pages_per_split(p) - 1) / max_pages_per_split(p);
  return std::max(1, std::min(std::max(wanted, fewest), p.n_pages));
}

void decode_attention_coupled_gpu(const CoupledPagesGpu& p, const float* queries, int n_queries, float scale, int splits,
                                  float* split_out, float* split_lse, float* out, float* lse, cudaStream_t stream) {
  RINGKV_REQUIRE(p.streams >= 1 && splits >= 1 && n_queries >= 1, "decode_attention_coupled_gpu: streams, splits and queries must be positive");
  RINGKV_REQUIRE(p.key_channels > 0 && p.value_channels > 0 && p.head_dim % p.key_channels == 0 &&
                     p.head_dim % p.value_channels == 0 && p.key_bits >= 1 && p.value_bits >= 1 && p.key_bits <= 16 &&
                     p.value_bits <= 16,
                 "decode_attention_coupled_gpu: channel groups must divide head_dim, codes of 1 to 16 bits");
  const int pages_per_split = (p.n_pages + splits - 1) / splits;
  RINGKV_REQUIRE(pages_per_split <= max_pages_per_split(p),
                 "decode_attention_coupled_gpu: " + std::to_string(splits) + " splits leave too many keys per split");
  const size_t bytes = shared_bytes(p, std::max(1, pages_per_split));
  int device = 0, most = 0;
  RINGKV_CHECK_CUDA(cudaGetDevice(&device));
  RINGKV_CHECK_CUDA(cudaDeviceGetAttribute(&most, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  RINGKV_REQUIRE(bytes <= static_cast<size_t>(most),
                 "decode_attention_coupled_gpu: the lookup tables need " + std::to_string(bytes) +
                     " bytes of shared memory; the GPU gives a block " + std::to_string(most) +
                     " (fewer bits per code or more channels per group fit)");
  RINGKV_CHECK_CUDA(cudaFuncSetAttribute(kernels::decode_attention_coupled_kernel,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
  const kernels::CoupledKernelParams params{p.key_pages,    p.value_pages,  p.key_centroids, p.value_centroids,
                                            p.n_pages,      p.page_tokens,  pages_per_split, p.head_dim,
                                            p.key_channels, p.key_bits,     p.value_channels, p.value_bits};
  kernels::decode_attention_coupled_kernel<<<dim3(splits, p.streams), kernels::kCoupledThreads, bytes, stream>>>(
      params, queries, n_queries, scale, split_out, split_lse);
  RINGKV_CHECK_CUDA(cudaGetLastError());
  merge_states_gpu(splits, p.streams * n_queries, p.head_dim, split_out, split_lse, out, lse, stream);
}

}  // namespace ringkv
