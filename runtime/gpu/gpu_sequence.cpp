#include "runtime/gpu/gpu_sequence.hpp"

#include <algorithm>
#include <cstdint>

#include "runtime/gpu/gpu_backend.hpp"
#include "runtime/gpu/gpu_sequence_parallel.hpp"

namespace ringkv {

namespace {
// Checks the codec and the whole footprint before the first allocation, so nothing is half-built
// on refusal.
const ModelWeights& require_fit(const ModelWeights& weights, const KVSpec& spec, const Calibration* calibration,
                                size_t context_tokens, int chunk_tokens, int page_size) {
  RINGKV_REQUIRE(chunk_tokens > 0, "the prefill chunk must hold at least one token");
  const ModelConfig& c = weights.config();
  const size_t cache = gpu_kv_cache_bytes(spec, c, context_tokens, page_size);
  require_gpu_kv_calibration(spec, calibration);
  const size_t bytes = GpuModelWeights::bytes_needed(weights) + GpuTransformer::activation_bytes(c, chunk_tokens) + cache;
  require_gpu_memory(bytes, "a context of " + std::to_string(context_tokens) + " tokens with " + weights.source() +
                                " and KV codec '" + spec.text() + "' (" + std::to_string(cache >> 20) + " MiB of cache)");
  RINGKV_REQUIRE(context_tokens <= static_cast<size_t>(INT32_MAX), "a context of " + std::to_string(context_tokens) +
                                                                      " tokens exceeds the 2^31 positions RingKV counts");
  return weights;
}
}  // namespace

GpuSequence::GpuSequence(const ModelWeights& weights, const KVSpec& spec, const Calibration* calibration, size_t context_tokens,
                         int chunk_tokens, int page_size, bool decode_graphs)
    : model_(require_fit(weights, spec, calibration, context_tokens, chunk_tokens, page_size), context_tokens, chunk_tokens,
             decode_graphs),
      cache_(make_gpu_kv_cache(spec, weights.config(), context_tokens, page_size, calibration)),
      context_tokens_(context_tokens),
      max_chunk_(chunk_tokens),
      page_size_(page_size) {}

void GpuSequence::restart(const KVSpec& spec, const Calibration* calibration) {
  const ModelConfig& c = model_.config();
  const size_t bytes = gpu_kv_cache_bytes(spec, c, context_tokens_, page_size_);
  require_gpu_kv_calibration(spec, calibration);
  cache_.reset();  // the new cache may need the old one's memory
  require_gpu_memory(bytes, "a cache of " + std::to_string(context_tokens_) + " tokens with KV codec '" + spec.text() + "'");
  cache_ = make_gpu_kv_cache(spec, c, context_tokens_, page_size_, calibration);
}

void GpuSequence::prefill(std::span<const int32_t> tokens, int chunk_tokens, std::vector<float>& logits, bool all_logits) {
  RINGKV_REQUIRE(!tokens.empty(), "prefill needs at least one token");
  const size_t chunk = static_cast<size_t>(std::clamp(chunk_tokens, 1, max_chunk_));
  logits.clear();
  std::vector<float> chunk_logits;
  for (size_t begin = 0; begin < tokens.size(); begin += chunk) {
    const size_t n = std::min(tokens.size() - begin, chunk);
    const bool last = begin + n == tokens.size();
    const TokenRun run{cache_->length(), static_cast<int>(n)};
    model_.forward(tokens.subspan(begin, n), {&run, 1}, *cache_, chunk_logits, all_logits);
    if (all_logits || last) logits.insert(logits.end(), chunk_logits.begin(), chunk_logits.end());
  }
}

void GpuSequence::decode(int32_t token, std::vector<float>& logits) {
  const TokenRun run{cache_->length(), 1};
  model_.forward(std::span(&token, 1), {&run, 1}, *cache_, logits, false);
}

std::unique_ptr<TokenSequence> make_gpu_sequence(const ModelWeights& weights, const KVSpec& spec, const Calibration* calibration,
                                                 size_t context_tokens, int chunk_tokens, int page_size, Communicator& comm,
                                                 bool decode_graphs) {
  RINGKV_REQUIRE(cuda_device_count() > 0, "--device gpu: no CUDA device is visible to rank " + std::to_string(comm.rank()));
  if (comm.size() > 1)
    RINGKV_REQUIRE(spec.text() == "bf16", "on several GPUs the KV cache is bf16 so far; --kv " + spec.text() +
                                              " runs on one GPU (one rank) or on CPU ranks (--device cpu)");
  bind_rank_to_gpu(comm);
  if (comm.size() > 1) return std::make_unique<GpuSequenceParallel>(weights, context_tokens, chunk_tokens, page_size, comm);
  return std::make_unique<GpuSequence>(weights, spec, calibration, context_tokens, chunk_tokens, page_size, decode_graphs);
}

}  // namespace ringkv
