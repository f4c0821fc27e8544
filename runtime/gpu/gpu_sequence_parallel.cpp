#include "runtime/gpu/gpu_sequence_parallel.hpp"

#include <algorithm>

#include "runtime/segmented_prefill.hpp"

namespace ringkv {

namespace {
// A rank's tokens of one segment: about a chunk, give or take the whole pages of its two zigzag
// chunks and the open page it continues.
int step_tokens(int chunk_tokens, int page_size) { return chunk_tokens + 3 * page_size; }

// A shard's expected share: its part of the pages and three pages more (the ring cache grows a
// shard that the layout's hand-out makes larger).
size_t shard_tokens(size_t context_tokens, int ranks, int page_size) {
  return std::min(context_tokens, (context_tokens + ranks - 1) / ranks + 3 * static_cast<size_t>(page_size));
}

const ModelWeights& require_fit(const ModelWeights& weights, size_t context_tokens, int chunk_tokens, int page_size,
                                int ranks) {
  RINGKV_REQUIRE(chunk_tokens > 0 && page_size > 0, "prefill chunks and pages must hold at least one token");
  const ModelConfig& c = weights.config();
  const int step = step_tokens(chunk_tokens, page_size);
  const size_t shard = shard_tokens(context_tokens, ranks, page_size);
  const size_t cache = GpuRingCache::bytes_needed(c, shard, step, ranks);
  require_gpu_memory(GpuModelWeights::bytes_needed(weights) + GpuTransformer::activation_bytes(c, step) + cache,
                     "a context of " + std::to_string(context_tokens) + " tokens over " + std::to_string(ranks) +
                         " GPUs with " + weights.source() + " and a bf16 KV cache (" + std::to_string(cache >> 20) +
                         " MiB of it per GPU)");
  RINGKV_REQUIRE(context_tokens <= static_cast<size_t>(INT32_MAX), "a context of " + std::to_string(context_tokens) +
                                                                      " tokens exceeds the 2^31 positions RingKV counts");
  return weights;
}
}  // namespace

GpuSequenceParallel::GpuSequenceParallel(const ModelWeights& weights, size_t context_tokens, int chunk_tokens,
                                         int page_size, Communicator& mpi)
    : mpi_(mpi),
      max_chunk_(chunk_tokens),
      nccl_(mpi),
      model_(require_fit(weights, context_tokens, chunk_tokens, page_size, mpi.size()), context_tokens,
             step_tokens(chunk_tokens, page_size)),
      cache_(weights.config(), shard_tokens(context_tokens, mpi.size(), page_size), step_tokens(chunk_tokens, page_size),
             nccl_),
      layout_(mpi.size(), page_size) {}

void GpuSequenceParallel::prefill(std::span<const int32_t> tokens, int chunk_tokens, std::vector<float>& logits,
                                  bool all_logits) {
  const size_t vocab = static_cast<size_t>(model_.config().vocab_size);
  prefill_in_segments(layout_, mpi_.rank(), &mpi_, tokens, std::clamp(chunk_tokens, 1, max_chunk_), vocab, all_logits, logits,
                      [&](const std::vector<std::vector<TokenRun>>& plan, std::span<const int32_t> my_tokens,
                          std::vector<float>& mine) {
                        cache_.plan_prefill(plan);
                        model_.forward(my_tokens, plan[mpi_.rank()], cache_, mine, all_logits);
                      });
}

void GpuSequenceParallel::decode(int32_t token, std::vector<float>& logits) {
  cache_.plan_decode(layout_.decode_owner());
  const TokenRun run{layout_.length(), 1};
  model_.forward(std::span(&token, 1), {&run, 1}, cache_, logits, false);
  layout_.add_decoded_token();
}

}  // namespace ringkv
