#pragma once
// The GPU backend as the commands see it: one sequence on this process's GPU. Built with or without
// CUDA; without it (or without a device) make_gpu_sequence refuses with the reason.
#include <memory>

#include "comm/communicator.hpp"
#include "kvstore/calibration.hpp"
#include "kvstore/codec_spec.hpp"
#include "kvstore/kmeans.hpp"
#include "runtime/model_weights.hpp"
#include "runtime/perplexity.hpp"
#include "runtime/token_sequence.hpp"

namespace ringkv {

// A sequence of up to context_tokens tokens, prefilled in chunks of up to chunk_tokens, with pages
// of page_size tokens, on the GPUs of the job's ranks (one per rank, bound by local rank): on one
// rank the weights and the cache (bf16, INT, KVQuant, CQ or RVQ; learned tables from the
// calibration) on its GPU; on several, every rank holds the weights and a shard of a bf16 cache, and they run ring
// attention over NCCL. Refuses, before allocating, a codec the GPU has no kernels for, or a model
// and context that do not fit in a GPU's free memory. decode_graphs: on one rank, replay decode
// steps as CUDA graphs (false: plain launches, for comparison).
std::unique_ptr<TokenSequence> make_gpu_sequence(const ModelWeights& weights, const KVSpec& spec, const Calibration* calibration,
                                                 size_t context_tokens, int chunk_tokens, int page_size, Communicator& comm,
                                                 bool decode_graphs = true);

// Perplexity windows on this process's GPU (ringkv perplexity --device gpu; on several ranks, each
// evaluates its windows on its own GPU): the weights uploaded once, a fresh cache of each codec per
// window. Refuses without CUDA or a device.
std::unique_ptr<WindowEvaluator> make_gpu_window_evaluator(const ModelWeights& weights, const Calibration* calibration,
                                                           const PerplexityOptions& options, Communicator& comm);

// k-means' nearest-centroid searches on this process's GPU (ringkv calibrate --device gpu); refuses
// without CUDA or a device.
std::unique_ptr<NearestSearch> make_gpu_nearest_search();

}  // namespace ringkv
