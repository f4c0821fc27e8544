#include "kernels/tensor_map.hpp"

#include <cuda_runtime.h>
#include <cudaTypedefs.h>

#include <string>

#include "kernels/cuda_check.hpp"
#include "kernels/error.hpp"

namespace ringkv {

namespace {
// cuTensorMapEncodeTiled from the driver the runtime loaded (the program links only the runtime).
PFN_cuTensorMapEncodeTiled_v12000 encode_tiled() {
  static const PFN_cuTensorMapEncodeTiled_v12000 encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    RINGKV_CHECK_CUDA(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &found));
    RINGKV_REQUIRE(found == cudaDriverEntryPointSuccess && fn, "the CUDA driver has no cuTensorMapEncodeTiled (TMA)");
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
  }();
  return encode;
}
}  // namespace

CUtensorMap bf16_rows_tensor_map(const uint16_t* base, int64_t rows, int heads) {
  constexpr int kChannels = 128;
  RINGKV_REQUIRE(rows > 0 && heads > 0, "a TMA tensor map needs at least one row and head");
  RINGKV_REQUIRE(reinterpret_cast<uintptr_t>(base) % 16 == 0, "TMA tiles need 16-byte aligned rows");
  const cuuint64_t dims[3] = {kChannels, static_cast<cuuint64_t>(heads), static_cast<cuuint64_t>(rows)};
  const cuuint64_t strides[2] = {kChannels * sizeof(uint16_t), static_cast<cuuint64_t>(heads) * kChannels * sizeof(uint16_t)};
  const cuuint32_t box[3] = {64, 1, 128}, element_strides[3] = {1, 1, 1};
  CUtensorMap map{};
  const CUresult result = encode_tiled()(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, const_cast<uint16_t*>(base), dims, strides,
                                         box, element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                                         CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  RINGKV_REQUIRE(result == CUDA_SUCCESS, "cuTensorMapEncodeTiled failed (error " + std::to_string(result) + ") for a tensor of " +
                                             std::to_string(rows) + " rows x " + std::to_string(heads) + " heads");
  return map;
}

}  // namespace ringkv
