#pragma once
// A rank's shard of the compressed KV cache: for each (layer, KV head), sealed compressed pages
// plus an uncompressed bf16 tail that seals into a page when it holds page_size tokens. All
// storage is charged to one MemoryBudget, which refuses what does not fit before allocating.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kernels/attention_state.hpp"
#include "kernels/rope.hpp"
#include "kvstore/codec.hpp"
#include "kvstore/memory_budget.hpp"

namespace ringkv {

struct ShardConfig {
  int layers = 1;
  int kv_heads = 1;
  int head_dim = 128;
  int page_size = 128;
  KVSpec spec = KVSpec::parse("bf16");
  RopeTable rope;                          // used to rotate keys (post-RoPE codecs, pre-RoPE attention)
  size_t memory_budget_bytes = SIZE_MAX;   // all pages, tails and codec tables of this shard
};

// Decoded rows of one (layer, KV head): keys post-RoPE and values [rows][head_dim], positions ascending.
struct KVRows {
  std::vector<float> keys, values;
  std::vector<int> positions;
  size_t size() const { return positions.size(); }
};

// Bytes held by the shard, by what they hold; bits_per_element() divides by the stored elements.
struct StorageStats {
  size_t tokens = 0;            // summed over layers and heads
  size_t sealed_tokens = 0;     // of which in sealed pages
  size_t sealed_payload = 0;    // encoded page bytes (codes, scales, outliers, sinks)
  size_t page_headers = 0;      // per-page headers
  size_t tail = 0;              // uncompressed tail bytes
  size_t codebooks = 0;         // learned tables of the codecs
  size_t total() const { return sealed_payload + page_headers + tail + codebooks; }
  // Bits per stored K or V element: total * 8 / (2 * tokens * head_dim).
  double bits_per_element(int head_dim) const;
  // Bytes per (layer, head) stream holding `context_tokens` tokens at this shard's sealed-page rate, with
  // this shard's codebooks shared over `streams` streams: the footprint of a long context.
  double projected_bytes_per_stream(double context_tokens, size_t streams) const;
};

class KVShard {
 public:
  // `calibration` must outlive the shard when the spec's codecs need learned tables.
  KVShard(ShardConfig config, const Calibration* calibration);
  ~KVShard();
  KVShard(KVShard&&) noexcept;
  KVShard& operator=(KVShard&&) noexcept;

  const ShardConfig& config() const { return config_; }
  const Calibration* calibration() const { return calibration_; }

  // Appends n tokens of one layer and head. keys are pre-RoPE, values as produced; both [n][head_dim];
  // row i is at absolute position first_position + i. A position that does not follow the tail's
  // last one seals the tail early (a shard may hold several disjoint ranges of the sequence).
  void append(int layer, int head, const float* keys_pre_rope, const float* values, int n, int first_position);

  // Partial attention of post-RoPE queries ([n_queries][head_dim], for example the query heads of a
  // GQA group) over everything this shard holds for (layer, head); scores are scale * q.k.
  AttentionState attend(int layer, int head, const float* queries, int n_queries, float scale) const;

  // Everything held for (layer, head), decoded, in stored order: for tests and analysis.
  KVRows decode_all(int layer, int head) const;
  // The pages (sealed, then the tail) of (layer, head) that begin below position `below`, decoded
  // a batch of about batch_tokens rows at a time, so that memory stays bounded at any context.
  void visit_rows(int layer, int head, int below, size_t batch_tokens, const std::function<void(const KVRows&)>& visit) const;
  // The tail's rows (not sealed yet), decoded.
  KVRows tail_rows(int layer, int head) const;
  // Appends to `rows` the form n rows would have in the tail if appended now (bf16, or fp32 under
  // an fp32 codec; keys post-RoPE), without appending them: prefill attends to a query's own page
  // in this form.
  void add_tail_form(int layer, int head, const float* keys_pre_rope, const float* values, int n, int first_position,
                     KVRows& rows) const;

  // The sealed pages of one layer (every head) as bytes that a shard of the same config on another
  // rank decodes: ring attention passes these, compressed, between ranks. See page_transfer.cpp.
  std::vector<uint8_t> pack_sealed_pages(int layer) const;
  // Decodes such bytes in batches as visit_rows does: visit(head, rows) for the pages below `below`.
  void visit_packed_pages(int layer, std::span<const uint8_t> packed, int below, size_t batch_tokens,
                          const std::function<void(int head, const KVRows&)>& visit) const;

  size_t tokens(int layer, int head) const;
  StorageStats stats() const;
  // Bytes the shard would need to hold `tokens` tokens per (layer, head), for refusing early.
  size_t bytes_needed(size_t tokens) const;

  // Snapshots: see snapshot.cpp for the format. load refuses files written for another config,
  // codec spec or calibration.
  void save_snapshot(const std::string& path) const;
  static KVShard load_snapshot(const std::string& path, ShardConfig config, const Calibration* calibration);

 private:
  struct Stream;  // one (layer, head): pages and tail
  Stream& stream(int layer, int head);
  const Stream& stream(int layer, int head) const;
  void seal(Stream& s);
  // Appends a page's rows, decoded, to `rows` (keys rotated when the codec keeps them pre-RoPE).
  void add_decoded_page(const PageCodec& kc, const PageCodec& vc, const PageView& k, const PageView& v, KVRows& rows) const;

  ShardConfig config_;
  const Calibration* calibration_;
  std::unique_ptr<MemoryBudget> budget_;
  std::vector<std::unique_ptr<Stream>> streams_;
  std::unique_ptr<PagePool> key_pool_, value_pool_;  // declared after budget_: released before it
};

}  // namespace ringkv
