// ringkv perplexity --device gpu: each window under each codec on this rank's GPU, with the weights
// uploaded once and a fresh cache per run.
#include "runtime/gpu/gpu_backend.hpp"
#include "runtime/gpu/gpu_sequence.hpp"
#include "comm/nccl/nccl_communicator.hpp"

namespace ringkv {

namespace {
class GpuWindowEvaluator final : public WindowEvaluator {
 public:
  GpuWindowEvaluator(const ModelWeights& weights, const Calibration* calibration, const PerplexityOptions& o)
      : weights_(weights), calibration_(calibration), options_(o) {}

  StorageStats run(std::span<const int32_t> window, const KVSpec& spec, std::vector<float>& logits) override {
    if (sequence_)
      sequence_->restart(spec, calibration_);
    else
      sequence_ = std::make_unique<GpuSequence>(weights_, spec, calibration_, static_cast<size_t>(options_.window), options_.chunk,
                                                options_.page_size);
    sequence_->prefill(window, options_.chunk, logits, true);
    return sequence_->kv_storage();
  }

 private:
  const ModelWeights& weights_;
  const Calibration* calibration_;
  PerplexityOptions options_;
  std::unique_ptr<GpuSequence> sequence_;
};
}  // namespace

std::unique_ptr<WindowEvaluator> make_gpu_window_evaluator(const ModelWeights& weights, const Calibration* calibration,
                                                           const PerplexityOptions& options, Communicator& comm) {
  RINGKV_REQUIRE(cuda_device_count() > 0, "--device gpu: no CUDA device is visible to rank " + std::to_string(comm.rank()));
  bind_rank_to_gpu(comm);
  return std::make_unique<GpuWindowEvaluator>(weights, calibration, options);
}

}  // namespace ringkv
