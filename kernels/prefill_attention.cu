#include "kernels/cuda_check.hpp"
#include "kernels/prefill_attention.cuh"
#include "kernels/prefill_attention_wgmma.cuh"
#include "kernels/prefill_attention_gpu.hpp"
#include "kernels/tensor_map.hpp"

namespace ringkv {

namespace {
template <int D>
void launch(const PrefillShape& s, const uint16_t* q, const uint16_t* k, const uint16_t* v, float* out, float* lse,
            cudaStream_t stream) {
  constexpr size_t bytes = kernels::prefill_shared_bytes<D>();  // over the 48 KiB default: ask for it
  RINGKV_CHECK_CUDA(cudaFuncSetAttribute(kernels::prefill_attention_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(bytes)));
  const dim3 grid((s.n_queries + kernels::kPrefillQueries - 1) / kernels::kPrefillQueries, s.heads);
  kernels::prefill_attention_kernel<D><<<grid, kernels::kPrefillThreads, bytes, stream>>>(s, q, k, v, out, lse);
}
// Whether this build has the wgmma kernel (sm_90a) and the current device runs it (compute capability 9.0).
bool has_warpgroup_mma() {
#ifdef RINGKV_WGMMA
  int device = 0, major = 0, minor = 0;
  RINGKV_CHECK_CUDA(cudaGetDevice(&device));
  RINGKV_CHECK_CUDA(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  RINGKV_CHECK_CUDA(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  return major == 9 && minor == 0;
#else
  return false;
#endif
}

void launch_wgmma(const PrefillShape& s, const uint16_t* q, const uint16_t* k, const uint16_t* v, float* out, float* lse,
                  cudaStream_t stream) {
  RINGKV_CHECK_CUDA(cudaFuncSetAttribute(kernels::prefill_attention_wgmma_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(kernels::kWgmmaSharedBytes)));
  // Without keys (k and v may be null) the maps describe the queries instead; no tile of them is read.
  const bool keys = s.n_keys > 0;
  const CUtensorMap q_map = bf16_rows_tensor_map(q, s.n_queries, s.heads),
                    k_map = keys ? bf16_rows_tensor_map(k, s.n_keys, s.kv_heads) : q_map,
                    v_map = keys ? bf16_rows_tensor_map(v, s.n_keys, s.kv_heads) : q_map;
  const dim3 grid((s.n_queries + kernels::kWgmmaQueries - 1) / kernels::kWgmmaQueries, s.heads);
  kernels::prefill_attention_wgmma_kernel<<<grid, kernels::kWgmmaThreads, kernels::kWgmmaSharedBytes, stream>>>(
      s, q_map, k_map, v_map, out, lse);
}
}  // namespace

void prefill_attention_gpu(const PrefillShape& s, const uint16_t* q, const uint16_t* k, const uint16_t* v, float* out,
                           float* lse, cudaStream_t stream) {
  RINGKV_REQUIRE(s.n_queries >= 0 && s.n_keys >= 0 && s.heads > 0 && s.kv_heads > 0 && s.heads % s.kv_heads == 0,
                 "prefill_attention_gpu: bad shape");
  RINGKV_REQUIRE(s.view == PrefillView::kCausal || s.page > 0, "prefill_attention_gpu: a paged view needs the page size");
  // The kernels take the row maxima of the unscaled scores.
  RINGKV_REQUIRE(s.scale > 0.f, "prefill_attention_gpu: the score scale must be positive");
  if (s.n_queries == 0) return;
  switch (s.head_dim) {
    case 64: launch<64>(s, q, k, v, out, lse, stream); break;
    case 128:
      if (has_warpgroup_mma()) launch_wgmma(s, q, k, v, out, lse, stream);
      else launch<128>(s, q, k, v, out, lse, stream);
      break;
    default: fail("prefill_attention_gpu: head_dim " + std::to_string(s.head_dim) + " is not compiled (64, 128)", __FILE__, __LINE__);
  }
  RINGKV_CHECK_CUDA(cudaGetLastError());
}

}  // namespace ringkv
