// The GPU backend of a build without the CUDA toolkit.
#include "kernels/error.hpp"
#include "runtime/gpu/gpu_backend.hpp"

namespace ringkv {

std::unique_ptr<TokenSequence> make_gpu_sequence(const ModelWeights&, const KVSpec&, const Calibration*, size_t, int, int, Communicator&, bool) {
  RINGKV_REQUIRE(false, "this ringkv was built without CUDA (nvcc was not found at configure time): use --device cpu");
  return nullptr;
}

std::unique_ptr<WindowEvaluator> make_gpu_window_evaluator(const ModelWeights&, const Calibration*, const PerplexityOptions&,
                                                           Communicator&) {
  RINGKV_REQUIRE(false, "this ringkv was built without CUDA (nvcc was not found at configure time): use --device cpu");
  return nullptr;
}

std::unique_ptr<NearestSearch> make_gpu_nearest_search() {
  RINGKV_REQUIRE(false, "this ringkv was built without CUDA (nvcc was not found at configure time): use --device cpu");
  return nullptr;
}

}  // namespace ringkv
