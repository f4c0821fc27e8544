#include "kernels/cuda_check.hpp"
#include "kernels/merge_states.cuh"
#include "kernels/merge_states_gpu.hpp"

namespace ringkv {

int cuda_device_count() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}

int multiprocessor_count() {
  int device = 0, sms = 132;
  if (cudaGetDevice(&device) == cudaSuccess) cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  return sms;
}

int max_shared_bytes_per_block() {
  int device = 0, most = 0;
  RINGKV_CHECK_CUDA(cudaGetDevice(&device));
  RINGKV_CHECK_CUDA(cudaDeviceGetAttribute(&most, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  return most;
}

namespace {
template <int D>
void launch(int n_states, int n_queries, const float* outs, const float* lses, float* mo, float* ml, cudaStream_t stream) {
  kernels::merge_states_kernel<D><<<n_queries, kernels::kMergeThreads, 0, stream>>>(n_states, n_queries, outs, lses, mo, ml);
}
}  // namespace

void merge_states_gpu(int n_states, int n_queries, int head_dim, const float* outs, const float* lses, float* merged_out,
                      float* merged_lse, cudaStream_t stream) {
  if (n_queries == 0) return;
  switch (head_dim) {
    case 64: launch<64>(n_states, n_queries, outs, lses, merged_out, merged_lse, stream); break;
    case 96: launch<96>(n_states, n_queries, outs, lses, merged_out, merged_lse, stream); break;
    case 128: launch<128>(n_states, n_queries, outs, lses, merged_out, merged_lse, stream); break;
    case 256: launch<256>(n_states, n_queries, outs, lses, merged_out, merged_lse, stream); break;
    default: fail("merge_states_gpu: head_dim " + std::to_string(head_dim) + " is not compiled (64, 96, 128, 256)", __FILE__, __LINE__);
  }
  RINGKV_CHECK_CUDA(cudaGetLastError());
}

}  // namespace ringkv
