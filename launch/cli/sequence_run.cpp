#include "launch/cli/sequence_run.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "kernels/error.hpp"
#include "runtime/gpu/gpu_backend.hpp"

namespace ringkv::cli {

std::string format_bytes(double bytes) {
  char b[32];
  if (bytes >= (1ull << 30))
    std::snprintf(b, sizeof b, "%.2f GiB", bytes / (1ull << 30));
  else
    std::snprintf(b, sizeof b, "%.2f MiB", bytes / (1ull << 20));
  return b;
}

void share_tokens(std::vector<int32_t>& tokens) {
  std::vector<uint8_t> bytes(tokens.size() * sizeof(int32_t));
  std::copy_n(reinterpret_cast<const uint8_t*>(tokens.data()), bytes.size(), bytes.begin());
  Communicator::world().broadcast_bytes(bytes, 0, "send the prompt's token ids to every rank");
  tokens.resize(bytes.size() / sizeof(int32_t));
  std::copy(bytes.begin(), bytes.end(), reinterpret_cast<uint8_t*>(tokens.data()));
}

SequenceRun::SequenceRun(const ModelOptions& options, const ModelWeights& weights, const KVSpec& spec, size_t context_tokens)
    : spec_(spec), calibration_(options.load_calibration({spec})), config_(weights.config()) {
  Communicator& comm = Communicator::world();
  if (options.device == "gpu") {
    gpu_ = make_gpu_sequence(weights, spec, calibration_.get(), context_tokens, options.chunk, options.page_size, comm,
                             options.decode_graphs);
    return;
  }
  model_ = std::make_unique<Transformer>(weights, context_tokens);
  kv_ = std::make_unique<KVShard>(model_->shard_config(spec, options.page_size, options.kv_memory_bytes()), calibration_.get());
  // A rank holds its share of the pages, and shards stay within three pages of each other.
  const size_t ranks = static_cast<size_t>(comm.size()), page = static_cast<size_t>(options.page_size);
  const size_t per_rank = std::min(context_tokens, (context_tokens + ranks - 1) / ranks + 3 * page);
  const size_t needed = kv_->bytes_needed(per_rank);
  RINGKV_REQUIRE(needed <= options.kv_memory_bytes(),
                 "a context of " + std::to_string(context_tokens) + " tokens with KV codec '" + spec.text() + "' needs " +
                     format_bytes(static_cast<double>(needed)) + " of KV memory per rank on " + std::to_string(ranks) +
                     " rank(s); the budget is " + format_bytes(static_cast<double>(options.kv_memory_bytes())) +
                     " per rank (--kv-memory-gb; more ranks or a smaller codec fit more)");
  sharded_ = std::make_unique<DistributedSequence>(*model_, *kv_, &comm);
}

DistributedSequence& SequenceRun::sharded_sequence() {
  RINGKV_REQUIRE(sharded_, "saving and loading a KV cache needs --device cpu so far");
  return *sharded_;
}

std::string SequenceRun::storage_report() const {
  const ModelConfig& c = config_;
  const TokenSequence& sequence = sharded_ ? static_cast<const TokenSequence&>(*sharded_) : *gpu_;
  const double mine = static_cast<double>(sequence.stored_kv_bytes());
  const auto all = Communicator::world().all_gather_bytes({reinterpret_cast<const uint8_t*>(&mine), sizeof mine},
                                                         "gather KV cache sizes");
  double bytes = 0, most = 0, least = 1e300;
  for (const auto& r : all) {
    double theirs = 0;
    std::memcpy(&theirs, r.data(), sizeof theirs);
    bytes += theirs, most = std::max(most, theirs), least = std::min(least, theirs);
  }
  const double elements = 2.0 * sequence.length() * c.layers * c.kv_heads * c.head_dim;
  char line[256];
  std::snprintf(line, sizeof line, "KV cache (%s%s): %s for %d tokens, %.3f bits per element", spec_.text().c_str(),
                gpu_ ? ", on the GPU" : "", format_bytes(bytes).c_str(), sequence.length(),
                elements > 0 ? bytes * 8.0 / elements : 0.0);
  std::string text = line;
  if (all.size() > 1) {
    std::snprintf(line, sizeof line, "; %zu ranks hold %s to %s each", all.size(), format_bytes(least).c_str(),
                  format_bytes(most).c_str());
    text += line;
  }
  return text;
}

}  // namespace ringkv::cli
