#pragma once
// A KV cache of coded pages on the GPU (pages of 128 tokens, head_dim 128), page for page what the
// CPU store holds: keys after RoPE; the open page's rows in a bf16 tail that is encoded when it
// fills. The codec (a subclass) encodes and decodes pages and attends a decode step over them.
//
// A decode step reads the codes in place (split over pages, tails in the same launch). A prefill
// chunk decodes the layer's sealed pages into a bf16 scratch of the whole sequence, places the tail
// and the new rows after them, and attends in two calls: each query's own page in bf16, then, once
// the pages that fill are encoded and decoded back in the scratch, the pages below it as stored
// (and its own page too for the last query of a page, which a decode step would see sealed).
#include <vector>

#include "kernels/cuda_check.hpp"
#include "kernels/rope.hpp"
#include "kernels/tiled_pages_gpu.hpp"
#include "runtime/gpu/gpu_kv_cache.hpp"

namespace ringkv {

class GpuPagedCache : public GpuWholeSequenceCache {
 public:
  static constexpr int kPage = 128, kDim = 128;
  static constexpr int kSealBatch = 16;  // pages of a prefill chunk encoded in one launch
  static int pages_for(size_t capacity) { return static_cast<int>(capacity / kPage); }

  void attend(const GpuAttentionStep& step, cudaStream_t stream) override;
  StorageStats storage() const override;
  int64_t decode_graph_epoch() const override;

 protected:
  enum Role { kKeys = 0, kValues = 1 };
  // A layer's sealed pages ([kv_heads][count] device pointers per role) and bf16 tails (a pointer
  // per KV head, and the device array of their lengths).
  struct SealedPages {
    const uint8_t* const* keys;
    const uint8_t* const* values;
    int count;
    const uint16_t* const* tail_keys;
    const uint16_t* const* tail_values;
    const int* tail_tokens;
  };

  // most_splits: the most splits the codec's decode kernel takes over the cache's pages; the
  // partial states hold those and one more for the tails.
  GpuPagedCache(const ModelConfig& config, size_t capacity, size_t slot_bytes, int most_splits);
  // Device bytes of the pages, tails, scratch, staging and partial states; the codec adds its own.
  static size_t bytes_needed(const ModelConfig& config, size_t capacity, size_t slot_bytes, int most_splits);
  const ModelConfig& config() const { return config_; }
  // The most splits decode_attention_splits gives over the pages of a cache of `capacity` tokens,
  // for the codecs whose kernels read pages into a shared tile (KVQuant, RVQ).
  static int most_tiled_splits(const ModelConfig& config, size_t capacity);
  // Those kernels' view of a layer's sealed pages and tails.
  TiledPages tiled(const SealedPages& pages, const float* inv_freq) const;
  // The RoPE frequencies that turn the pre-RoPE keys of `codec`, on the device (head_dim 128).
  static DeviceBuffer<float> rope_frequencies(const RopeTable& rope, const std::string& codec);
  // The decode kernels' partial states [splits + 1][heads][128] and [splits + 1][heads].
  float* split_out() { return split_out_.data(); }
  float* split_lse() { return split_lse_.data(); }

  // Encodes `count` (at most kSealBatch) pages of every KV head of layer l, from page `first` on,
  // from fp32 rows [count][kv_heads][128][128] into slots (a device array [count][kv_heads]).
  virtual void encode(Role role, int l, int first, const float* rows, int count, uint8_t* const* slots,
                      cudaStream_t stream) = 0;
  // Decodes `count` pages of layer l from page `first` on (device array [count][kv_heads]) into bf16
  // rows [count * 128][kv_heads][128].
  virtual void decode(Role role, int l, int first, const uint8_t* const* slots, int count, uint16_t* rows,
                      cudaStream_t stream) = 0;
  // Bytes page `page` of a stream takes as stored in a role (its slot's size, unless the codec's
  // pages vary).
  virtual size_t page_bytes(Role /*role*/, int /*page*/) const { return slot_bytes_; }
  // Bytes of the codec's learned tables (levels, centroids, codebooks) over all layers, heads and roles.
  virtual size_t table_bytes() const { return 0; }
  // The step's token attending to layer step.layer's sealed pages and tails.
  virtual void attend_pages(const GpuAttentionStep& step, const SealedPages& pages, cudaStream_t stream) = 0;

 private:
  void decode_step(const GpuAttentionStep& step, cudaStream_t stream);
  void prefill_step(const GpuAttentionStep& step, cudaStream_t stream);
  // Encodes pages [first, first + count) of layer l, one role, from bf16 rows [count][kv_heads][128][128].
  void seal(Role role, int l, int first, int count, const uint16_t* rows, cudaStream_t stream);
  // The decode kernel's page pointers of layer l ([kv_heads][pages]), rebuilt when pages were sealed.
  void point_attention_at(int l, int pages, cudaStream_t stream);
  uint8_t* slot(Role role, int l, int page, int h);
  uint16_t* tail(Role role, int l, int h);

  ModelConfig config_;
  int max_pages_;
  size_t slot_bytes_;
  DeviceBuffer<uint8_t> pool_[2];                     // [layers][max_pages][kv_heads] slots per role
  DeviceBuffer<uint8_t*> page_pointers_[2];           // the same order: page k of layer l is a [kv_heads] run
  DeviceBuffer<const uint8_t*> attention_pointers_[2];  // per layer [kv_heads][sealed pages]
  std::vector<int> attention_pages_;                  // pages the pointers of each layer cover
  DeviceBuffer<uint16_t> tails_[2];                   // [layers][kv_heads][128][128] bf16
  DeviceBuffer<const uint16_t*> tail_pointers_[2];    // [layers][kv_heads]
  DeviceBuffer<int> tail_lengths_;                    // [kv_heads], the decode kernels' tail lengths
  DeviceBuffer<uint16_t> scratch_[2];                 // one layer's rows [capacity][kv_heads][128] bf16
  DeviceBuffer<uint16_t> page_rows_bf16_;             // [kSealBatch][kv_heads][128][128]
  DeviceBuffer<float> page_rows_;                     // the same in fp32, the encoder's input
  DeviceBuffer<float> split_out_, split_lse_;         // decode attention's partial states
};

}  // namespace ringkv
