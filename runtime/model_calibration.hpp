#pragma once
// Calibration on real activations: run the model over calibration text, collect each layer and KV
// head's keys (before RoPE) and values with the attention each token receives, and learn the codec
// tables from them. The same collection gives the KV dump that `ringkv analyze` reads.
#include <span>
#include <vector>

#include "kvstore/calibration.hpp"
#include "kvstore/codec_spec.hpp"
#include "kvstore/kmeans.hpp"
#include "kvstore/kv_dump.hpp"
#include "runtime/transformer.hpp"

namespace ringkv {

struct CollectedKV {
  struct Stream {
    std::vector<float> keys_pre_rope, values;  // [rows][head_dim]
    std::vector<int> positions;                // position of each row within its window
    std::vector<float> sensitivity;            // attention received, scaled to mean 1
  };
  int layers = 0, kv_heads = 0, head_dim = 0;
  std::vector<Stream> streams;  // [layer][kv_head]
  KVDump first_window;          // keys, values and final queries of the first window
  Stream& at(int layer, int head) { return streams[static_cast<size_t>(layer) * kv_heads + head]; }
};

// Runs windows of `window` tokens (each from position 0, as the model was trained) in prefill
// chunks of `chunk` tokens over a bf16 cache. The first window's last `dump_queries` positions give
// the dump's queries; its keys and values stop before them.
CollectedKV collect_kv(const Transformer& model, std::span<const int32_t> tokens, int window, int chunk,
                       int dump_queries);

// Learns the tables of every spec for every layer and KV head; k-means searches run on `nearest`
// (nullptr: the CPU).
Calibration learn_calibration(const CollectedKV& kv, std::span<const KVSpec> specs, int page_size, const RopeTable& rope,
                              const NearestSearch* nearest = nullptr);

}  // namespace ringkv
