#include "runtime/gpu/gpu_paged_cache.hpp"

#include <algorithm>

#include "kernels/decode_attention_gpu.hpp"
#include "kernels/prefill_attention_gpu.hpp"
#include "kernels/transformer_ops_gpu.hpp"

namespace ringkv {

namespace {
constexpr int kPage = GpuPagedCache::kPage, kDim = GpuPagedCache::kDim;
constexpr size_t kRowBytes = kDim * sizeof(uint16_t);
}  // namespace

size_t GpuPagedCache::bytes_needed(const ModelConfig& c, size_t capacity, size_t slot_bytes, int most_splits) {
  const size_t streams = static_cast<size_t>(c.layers) * c.kv_heads, pages = static_cast<size_t>(pages_for(capacity));
  const size_t pools = 2 * streams * pages * slot_bytes, pointers = 4 * streams * pages * sizeof(void*);
  const size_t tails = 2 * streams * (kPage * kRowBytes + sizeof(void*)), scratch = 2 * capacity * c.kv_heads * kRowBytes;
  const size_t counts = static_cast<size_t>(c.kv_heads) * sizeof(int);
  const size_t staging = static_cast<size_t>(kSealBatch) * c.kv_heads * kPage * kDim * (sizeof(uint16_t) + sizeof(float));
  const size_t states = static_cast<size_t>(most_splits + 1) * c.heads * (kDim + 1) * sizeof(float);
  return pools + pointers + tails + counts + scratch + staging + states;
}

GpuPagedCache::GpuPagedCache(const ModelConfig& c, size_t capacity, size_t slot_bytes, int most_splits)
    : GpuWholeSequenceCache(capacity), config_(c), max_pages_(pages_for(capacity)), slot_bytes_(slot_bytes) {
  const size_t streams = static_cast<size_t>(c.layers) * c.kv_heads, slots = streams * max_pages_;
  for (int r = 0; r < 2; ++r) {
    pool_[r] = DeviceBuffer<uint8_t>(slots * slot_bytes_);
    std::vector<uint8_t*> pointers(slots);
    for (size_t i = 0; i < slots; ++i) pointers[i] = pool_[r].data() + i * slot_bytes_;
    page_pointers_[r] = DeviceBuffer<uint8_t*>(slots);
    if (slots) page_pointers_[r].upload(pointers.data());
    attention_pointers_[r] = DeviceBuffer<const uint8_t*>(slots);
    tails_[r] = DeviceBuffer<uint16_t>(streams * kPage * kDim);
    std::vector<const uint16_t*> tails(streams);
    for (size_t s = 0; s < streams; ++s) tails[s] = tails_[r].data() + s * kPage * kDim;
    tail_pointers_[r] = DeviceBuffer<const uint16_t*>(streams);
    tail_pointers_[r].upload(tails.data());
    scratch_[r] = DeviceBuffer<uint16_t>(capacity * c.kv_heads * kDim);
  }
  attention_pages_.assign(c.layers, 0);
  tail_lengths_ = DeviceBuffer<int>(c.kv_heads);
  page_rows_bf16_ = DeviceBuffer<uint16_t>(static_cast<size_t>(kSealBatch) * c.kv_heads * kPage * kDim);
  page_rows_ = DeviceBuffer<float>(page_rows_bf16_.size());
  const size_t states = static_cast<size_t>(most_splits + 1);
  split_out_ = DeviceBuffer<float>(states * c.heads * kDim), split_lse_ = DeviceBuffer<float>(states * c.heads);
}

int GpuPagedCache::most_tiled_splits(const ModelConfig& c, size_t capacity) {
  return decode_attention_splits(std::max(1, pages_for(capacity)), c.kv_heads);
}

TiledPages GpuPagedCache::tiled(const SealedPages& p, const float* inv_freq) const {
  return {p.keys, p.values, inv_freq, config_.kv_heads, p.count, {p.tail_keys, p.tail_values, p.tail_tokens}};
}

DeviceBuffer<float> GpuPagedCache::rope_frequencies(const RopeTable& rope, const std::string& codec) {
  RINGKV_REQUIRE(rope.head_dim == kDim && rope.inv_freq.size() == kDim / 2, "the " + codec + " GPU cache takes head_dim 128");
  DeviceBuffer<float> inv_freq(rope.inv_freq.size());
  inv_freq.upload(rope.inv_freq.data());
  return inv_freq;
}

uint8_t* GpuPagedCache::slot(Role role, int l, int page, int h) {
  return pool_[role].data() + ((static_cast<size_t>(l) * max_pages_ + page) * config_.kv_heads + h) * slot_bytes_;
}

uint16_t* GpuPagedCache::tail(Role role, int l, int h) {
  return tails_[role].data() + (static_cast<size_t>(l) * config_.kv_heads + h) * kPage * kDim;
}

StorageStats GpuPagedCache::storage() const {
  const size_t streams = static_cast<size_t>(config_.layers) * config_.kv_heads;
  const int sealed = length_ / kPage;
  StorageStats st;
  st.tokens = streams * length_;
  st.sealed_tokens = streams * sealed * kPage;
  for (int k = 0; k < sealed; ++k) st.sealed_payload += streams * (page_bytes(kKeys, k) + page_bytes(kValues, k));
  st.tail = streams * 2 * static_cast<size_t>(length_ % kPage) * kRowBytes;
  st.codebooks = table_bytes();
  return st;
}

void GpuPagedCache::seal(Role role, int l, int first, int count, const uint16_t* rows, cudaStream_t stream) {
  from_bf16_gpu(rows, static_cast<size_t>(count) * config_.kv_heads * kPage * kDim, page_rows_.data(), stream);
  encode(role, l, first, page_rows_.data(), count,
         page_pointers_[role].data() + (static_cast<size_t>(l) * max_pages_ + first) * config_.kv_heads, stream);
}

void GpuPagedCache::point_attention_at(int l, int pages, cudaStream_t stream) {
  if (attention_pages_[l] == pages) return;
  const int kv_heads = config_.kv_heads;
  for (Role role : {kKeys, kValues}) {
    std::vector<const uint8_t*> host(static_cast<size_t>(kv_heads) * pages);
    for (int h = 0; h < kv_heads; ++h)
      for (int k = 0; k < pages; ++k) host[static_cast<size_t>(h) * pages + k] = slot(role, l, k, h);
    // Pageable memory is staged before the call returns, so `host` may go.
    if (!host.empty())
      RINGKV_CHECK_CUDA(cudaMemcpyAsync(attention_pointers_[role].data() + static_cast<size_t>(l) * max_pages_ * kv_heads,
                                        host.data(), host.size() * sizeof(void*), cudaMemcpyHostToDevice, stream));
  }
  attention_pages_[l] = pages;
}

void GpuPagedCache::attend(const GpuAttentionStep& step, cudaStream_t stream) {
  require_next_positions(step);
  if (step.tokens == 0) return;
  if (step.tokens == 1)
    decode_step(step, stream);
  else
    prefill_step(step, stream);
}

int64_t GpuPagedCache::decode_graph_epoch() const {
  const int sealed = length_ / kPage;
  if ((length_ + 1) % kPage == 0 || static_cast<size_t>(length_) >= capacity_) return -1;
  for (int pages : attention_pages_)
    if (pages != sealed) return -1;
  return epoch_of(sealed);
}

void GpuPagedCache::decode_step(const GpuAttentionStep& step, cudaStream_t stream) {
  const int l = step.layer, kv_heads = config_.kv_heads;
  int sealed = length_ / kPage;
  // The token's row goes to its row of every KV head's tail, found on the device from its position
  // (the tail lengths too), so the launches of a page's decode steps are all alike.
  const float* rows[2] = {step.keys, step.values};
  for (Role role : {kKeys, kValues})
    store_rows_bf16_gpu(rows[role], kv_heads, kDim, step.positions, kPage, tail(role, l, 0), static_cast<size_t>(kPage) * kDim,
                        kDim, role == kKeys ? tail_lengths_.data() : nullptr, stream);
  if ((length_ + 1) % kPage == 0) {  // the page fills: sealed before its last token attends, as on the CPU
    for (Role role : {kKeys, kValues}) seal(role, l, sealed, 1, tail(role, l, 0), stream);
    RINGKV_CHECK_CUDA(cudaMemsetAsync(tail_lengths_.data(), 0, tail_lengths_.size() * sizeof(int), stream));
    ++sealed;
  }
  point_attention_at(l, sealed, stream);
  const size_t pages_at = static_cast<size_t>(l) * max_pages_ * kv_heads, tails_at = static_cast<size_t>(l) * kv_heads;
  attend_pages(step,
               {attention_pointers_[kKeys].data() + pages_at, attention_pointers_[kValues].data() + pages_at, sealed,
                tail_pointers_[kKeys].data() + tails_at, tail_pointers_[kValues].data() + tails_at,
                tail_lengths_.data()},
               stream);
}

void GpuPagedCache::prefill_step(const GpuAttentionStep& step, cudaStream_t stream) {
  const int l = step.layer, kv_heads = config_.kv_heads, heads = step.heads;
  const int first = length_, end = length_ + step.tokens, sealed = first / kPage, open = first % kPage;
  const size_t row = static_cast<size_t>(kv_heads) * kDim, row_bytes = row * sizeof(uint16_t);
  const size_t layer_pages = static_cast<size_t>(l) * max_pages_ * kv_heads;
  // The scratch: sealed pages decoded, then the tail's rows, then the new rows.
  const float* rows[2] = {step.keys, step.values};
  for (Role role : {kKeys, kValues}) {
    uint16_t* scratch = scratch_[role].data();
    decode(role, l, 0, page_pointers_[role].data() + layer_pages, sealed, scratch, stream);
    if (open > 0)
      for (int h = 0; h < kv_heads; ++h)
        RINGKV_CHECK_CUDA(cudaMemcpy2DAsync(scratch + static_cast<size_t>(sealed) * kPage * row + h * kDim, row_bytes,
                                            tail(role, l, h), kRowBytes, kRowBytes, open, cudaMemcpyDeviceToDevice, stream));
    to_bf16_gpu(rows[role], static_cast<size_t>(step.tokens) * row, scratch + static_cast<size_t>(first) * row, stream);
  }
  // Every query sees the pages below its own as stored and its own page as computed, except a
  // page's last query, which sees its page sealed: one call while the scratch holds the computed
  // rows, then the pages that fill are encoded and decoded back in place, and a second call over the
  // stored view merges into the first's state.
  PrefillShape shape{step.tokens, end, first, heads, kv_heads, kDim, step.scale, PrefillView::kOpenPage, kPage};
  prefill_attention_gpu(shape, step.queries_bf16, scratch_[kKeys].data(), scratch_[kValues].data(), step.out, step.lse, stream);
  for (int first_page = sealed; first_page < end / kPage; first_page += kSealBatch) {
    const int count = std::min(kSealBatch, end / kPage - first_page);
    for (Role role : {kKeys, kValues}) {
      uint16_t* pages_rows = scratch_[role].data() + static_cast<size_t>(first_page) * kPage * row;
      // Each KV head's rows of the pages, [page][token] with a pitch of kv_heads rows, to [page][head][token].
      for (int h = 0; h < kv_heads; ++h) {
        cudaMemcpy3DParms copy{};
        copy.srcPtr = make_cudaPitchedPtr(pages_rows + h * kDim, row_bytes, kRowBytes, kPage);
        copy.dstPtr = make_cudaPitchedPtr(page_rows_bf16_.data() + static_cast<size_t>(h) * kPage * kDim, kRowBytes, kRowBytes,
                                          static_cast<size_t>(kv_heads) * kPage);
        copy.extent = make_cudaExtent(kRowBytes, kPage, count);
        copy.kind = cudaMemcpyDeviceToDevice;
        RINGKV_CHECK_CUDA(cudaMemcpy3DAsync(&copy, stream));
      }
      seal(role, l, first_page, count, page_rows_bf16_.data(), stream);
      decode(role, l, first_page, page_pointers_[role].data() + layer_pages + static_cast<size_t>(first_page) * kv_heads, count,
             pages_rows, stream);
    }
  }
  shape.view = PrefillView::kSealedPages, shape.accumulate = true;
  prefill_attention_gpu(shape, step.queries_bf16, scratch_[kKeys].data(), scratch_[kValues].data(), step.out, step.lse, stream);
  // The rows of the page still open become the tail.
  const int now_sealed = end / kPage, now_open = end % kPage;
  if (now_open > 0)
    for (Role role : {kKeys, kValues})
      for (int h = 0; h < kv_heads; ++h)
        RINGKV_CHECK_CUDA(cudaMemcpy2DAsync(tail(role, l, h), kRowBytes,
                                            scratch_[role].data() + static_cast<size_t>(now_sealed) * kPage * row + h * kDim,
                                            row_bytes, kRowBytes, now_open, cudaMemcpyDeviceToDevice, stream));
}

}  // namespace ringkv
