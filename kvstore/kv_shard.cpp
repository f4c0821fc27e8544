#include "kvstore/kv_shard.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>

#include "kernels/error.hpp"
#include "kvstore/kv_shard_stream.hpp"
#include "kvstore/memory_budget.hpp"
#include "kvstore/partial_attention.hpp"

namespace ringkv {

namespace {
constexpr size_t kSlotsPerSlab = 64;

// The tail holds bf16 rows, or fp32 rows under an fp32 codec (which must stay exact).
CodecSpec tail_spec(const CodecSpec& codec, bool pre_rope) {
  return CodecSpec::parse(std::string(codec.name() == "fp32" ? "fp32" : "bf16") + (pre_rope ? ":prerope=1" : ""));
}

// Slot size that holds any page of the codec: a full page, with or without sink rows.
size_t slot_bytes(const PageCodec& codec) {
  const int p = codec.page_size();
  return std::max(codec.encoded_bytes(p, 0), codec.encoded_bytes(p, 1 << 30));
}
}  // namespace

double StorageStats::bits_per_element(int head_dim) const {
  return tokens == 0 ? 0.0 : static_cast<double>(total()) * 8.0 / (2.0 * static_cast<double>(tokens) * head_dim);
}

double StorageStats::projected_bytes_per_stream(double context_tokens, size_t streams) const {
  // With nothing sealed yet, the rate is that of the tail, which the bytes per token then give.
  const double per_token = sealed_tokens ? static_cast<double>(sealed_payload + page_headers) / sealed_tokens
                                         : static_cast<double>(tail) / std::max<size_t>(tokens, 1);
  return per_token * context_tokens + static_cast<double>(codebooks) / std::max<size_t>(streams, 1);
}

KVShard::KVShard(ShardConfig config, const Calibration* calibration)
    : config_(std::move(config)), calibration_(calibration) {
  RINGKV_REQUIRE(config_.layers > 0 && config_.kv_heads > 0, "shard needs at least one layer and one KV head");
  RINGKV_REQUIRE(config_.rope.head_dim == config_.head_dim,
                 "shard RoPE table is for head_dim " + std::to_string(config_.rope.head_dim) + ", not " +
                     std::to_string(config_.head_dim));
  budget_ = std::make_unique<MemoryBudget>(config_.memory_budget_bytes);
  for (int l = 0; l < config_.layers; ++l)
    for (int h = 0; h < config_.kv_heads; ++h) {
      CodecContext ctx{config_.head_dim, config_.page_size, l, h, calibration_};
      auto s = std::make_unique<Stream>();
      s->key_codec = make_codec(config_.spec.key, Role::Key, ctx);
      s->value_codec = make_codec(config_.spec.value, Role::Value, ctx);
      s->tail_key_codec = make_codec(tail_spec(config_.spec.key, s->key_codec->stores_pre_rope_keys()), Role::Key, ctx);
      s->tail_value_codec = make_codec(tail_spec(config_.spec.value, false), Role::Value, ctx);
      s->tail_keys.resize(s->tail_key_codec->encoded_bytes(config_.page_size, 0));
      s->tail_values.resize(s->tail_value_codec->encoded_bytes(config_.page_size, 0));
      budget_->charge(s->tail_keys.size() + s->tail_values.size() + s->key_codec->codebook_bytes() +
                          s->value_codec->codebook_bytes(),
                      "the tail and codebooks of layer " + std::to_string(l) + " head " + std::to_string(h));
      streams_.push_back(std::move(s));
    }
  key_pool_ = std::make_unique<PagePool>(slot_bytes(*streams_[0]->key_codec), kSlotsPerSlab, *budget_, "key");
  value_pool_ = std::make_unique<PagePool>(slot_bytes(*streams_[0]->value_codec), kSlotsPerSlab, *budget_, "value");
}

KVShard::~KVShard() = default;
KVShard::KVShard(KVShard&&) noexcept = default;
KVShard& KVShard::operator=(KVShard&& other) noexcept {
  // Swapped rather than assigned member by member: this shard's old pools then go with `other`,
  // whose destructor releases them before their budget (a member-wise move freed the budget first).
  std::swap(config_, other.config_);
  std::swap(calibration_, other.calibration_);
  std::swap(budget_, other.budget_);
  std::swap(streams_, other.streams_);
  std::swap(key_pool_, other.key_pool_);
  std::swap(value_pool_, other.value_pool_);
  return *this;
}

KVShard::Stream& KVShard::stream(int layer, int head) {
  RINGKV_REQUIRE(layer >= 0 && layer < config_.layers && head >= 0 && head < config_.kv_heads,
                 "layer " + std::to_string(layer) + " head " + std::to_string(head) + " is outside the shard");
  return *streams_[static_cast<size_t>(layer) * config_.kv_heads + head];
}
const KVShard::Stream& KVShard::stream(int layer, int head) const { return const_cast<KVShard*>(this)->stream(layer, head); }

void KVShard::append(int layer, int head, const float* keys_pre_rope, const float* values, int n, int first_position) {
  Stream& s = stream(layer, head);
  const int d = config_.head_dim;
  std::vector<float> key(d);
  for (int i = 0; i < n; ++i) {
    const int position = first_position + i;
    if (s.tail_tokens > 0 && position != s.tail_first_position + s.tail_tokens) seal(s);
    if (s.tail_tokens == 0) s.tail_first_position = position;
    std::copy(keys_pre_rope + static_cast<size_t>(i) * d, keys_pre_rope + static_cast<size_t>(i + 1) * d, key.begin());
    if (!s.key_codec->stores_pre_rope_keys()) apply_rope(key.data(), position, config_.rope);
    s.tail_key_codec->encode(key.data(), 1, position, s.tail_keys.data() + s.tail_tokens * s.tail_key_codec->encoded_bytes(1, 0));
    s.tail_value_codec->encode(values + static_cast<size_t>(i) * d, 1, position,
                               s.tail_values.data() + s.tail_tokens * s.tail_value_codec->encoded_bytes(1, 0));
    if (++s.tail_tokens == config_.page_size) seal(s);
  }
}

void KVShard::seal(Stream& s) {
  if (s.tail_tokens == 0) return;
  const PageView tk{s.tail_keys.data(), s.tail_tokens, s.tail_first_position};
  const PageView tv{s.tail_values.data(), s.tail_tokens, s.tail_first_position};
  const std::vector<float> keys = s.tail_key_codec->decode_page(tk), values = s.tail_value_codec->decode_page(tv);
  SealedPage page{};
  page.key = {s.tail_first_position, static_cast<uint16_t>(s.tail_tokens), static_cast<uint8_t>(s.key_codec->kind()),
              static_cast<uint8_t>(Role::Key)};
  page.value = {s.tail_first_position, static_cast<uint16_t>(s.tail_tokens), static_cast<uint8_t>(s.value_codec->kind()),
                static_cast<uint8_t>(Role::Value)};
  page.key_slot = key_pool_->allocate();
  try {
    page.value_slot = value_pool_->allocate();
  } catch (...) {
    key_pool_->free(page.key_slot);
    throw;
  }
  s.key_codec->encode(keys.data(), s.tail_tokens, s.tail_first_position, key_pool_->data(page.key_slot));
  s.value_codec->encode(values.data(), s.tail_tokens, s.tail_first_position, value_pool_->data(page.value_slot));
  s.pages.push_back(page);
  s.sealed_tokens += s.tail_tokens;
  s.tail_tokens = 0;
}

AttentionState KVShard::attend(int layer, int head, const float* queries, int n_queries, float scale) const {
  const Stream& s = stream(layer, head);
  std::vector<PageView> keys, values;
  keys.reserve(s.pages.size());
  values.reserve(s.pages.size());
  for (const SealedPage& p : s.pages) {
    keys.push_back({key_pool_->data(p.key_slot), p.key.tokens, p.key.first_position});
    values.push_back({value_pool_->data(p.value_slot), p.value.tokens, p.value.first_position});
  }
  AttentionState state = partial_attention({s.key_codec.get(), s.value_codec.get(), keys, values}, queries, n_queries,
                                           config_.rope, scale);
  if (s.tail_tokens > 0) {
    const PageView tk{s.tail_keys.data(), s.tail_tokens, s.tail_first_position};
    const PageView tv{s.tail_values.data(), s.tail_tokens, s.tail_first_position};
    merge_state(state, partial_attention({s.tail_key_codec.get(), s.tail_value_codec.get(), {&tk, 1}, {&tv, 1}}, queries,
                                         n_queries, config_.rope, scale));
  }
  return state;
}

void KVShard::add_decoded_page(const PageCodec& kc, const PageCodec& vc, const PageView& k, const PageView& v,
                               KVRows& rows) const {
  std::vector<float> kr = kc.decode_page(k), vr = vc.decode_page(v);
  if (kc.stores_pre_rope_keys()) apply_rope_rows(kr.data(), k.tokens, k.first_position, config_.rope);
  rows.keys.insert(rows.keys.end(), kr.begin(), kr.end());
  rows.values.insert(rows.values.end(), vr.begin(), vr.end());
  for (int i = 0; i < k.tokens; ++i) rows.positions.push_back(k.first_position + i);
}

KVRows KVShard::decode_all(int layer, int head) const {
  KVRows all;
  visit_rows(layer, head, INT_MAX, SIZE_MAX, [&](const KVRows& rows) {
    all.keys.insert(all.keys.end(), rows.keys.begin(), rows.keys.end());
    all.values.insert(all.values.end(), rows.values.begin(), rows.values.end());
    all.positions.insert(all.positions.end(), rows.positions.begin(), rows.positions.end());
  });
  return all;
}

void KVShard::visit_rows(int layer, int head, int below, size_t batch_tokens,
                         const std::function<void(const KVRows&)>& visit) const {
  const Stream& s = stream(layer, head);
  KVRows batch;
  for (const SealedPage& p : s.pages) {
    if (p.key.first_position >= below) break;  // pages ascend
    add_decoded_page(*s.key_codec, *s.value_codec, {key_pool_->data(p.key_slot), p.key.tokens, p.key.first_position},
                     {value_pool_->data(p.value_slot), p.value.tokens, p.value.first_position}, batch);
    if (batch.size() >= batch_tokens) visit(batch), batch = {};
  }
  if (s.tail_tokens > 0 && s.tail_first_position < below) {
    const KVRows tail = tail_rows(layer, head);
    batch.keys.insert(batch.keys.end(), tail.keys.begin(), tail.keys.end());
    batch.values.insert(batch.values.end(), tail.values.begin(), tail.values.end());
    batch.positions.insert(batch.positions.end(), tail.positions.begin(), tail.positions.end());
  }
  if (batch.size() > 0) visit(batch);
}

KVRows KVShard::tail_rows(int layer, int head) const {
  const Stream& s = stream(layer, head);
  KVRows rows;
  if (s.tail_tokens > 0)
    add_decoded_page(*s.tail_key_codec, *s.tail_value_codec, {s.tail_keys.data(), s.tail_tokens, s.tail_first_position},
                {s.tail_values.data(), s.tail_tokens, s.tail_first_position}, rows);
  return rows;
}

void KVShard::add_tail_form(int layer, int head, const float* keys_pre_rope, const float* values, int n, int first_position,
                            KVRows& rows) const {
  const Stream& s = stream(layer, head);
  const int d = config_.head_dim;
  const PageCodec& kc = *s.tail_key_codec;
  std::vector<float> key_rows(keys_pre_rope, keys_pre_rope + static_cast<size_t>(n) * d);
  if (!kc.stores_pre_rope_keys()) apply_rope_rows(key_rows.data(), n, first_position, config_.rope);
  std::vector<uint8_t> keys(kc.encoded_bytes(n, first_position)), vals(s.tail_value_codec->encoded_bytes(n, first_position));
  kc.encode(key_rows.data(), n, first_position, keys.data());
  s.tail_value_codec->encode(values, n, first_position, vals.data());
  add_decoded_page(kc, *s.tail_value_codec, {keys.data(), n, first_position}, {vals.data(), n, first_position}, rows);
}

size_t KVShard::tokens(int layer, int head) const {
  const Stream& s = stream(layer, head);
  return s.sealed_tokens + s.tail_tokens;
}

StorageStats KVShard::stats() const {
  StorageStats st;
  for (const auto& s : streams_) {
    st.tokens += s->sealed_tokens + s->tail_tokens;
    st.sealed_tokens += s->sealed_tokens;
    for (const SealedPage& p : s->pages)
      st.sealed_payload += s->key_codec->encoded_bytes(p.key.tokens, p.key.first_position) +
                           s->value_codec->encoded_bytes(p.value.tokens, p.value.first_position);
    st.page_headers += s->pages.size() * 2 * sizeof(SealedPageHeader);
    st.tail += s->tail_tokens * (s->tail_key_codec->encoded_bytes(1, 0) + s->tail_value_codec->encoded_bytes(1, 0));
    st.codebooks += s->key_codec->codebook_bytes() + s->value_codec->codebook_bytes();
  }
  return st;
}

size_t KVShard::bytes_needed(size_t tokens) const {
  const size_t streams = streams_.size();
  const size_t pages = streams * (tokens / static_cast<size_t>(config_.page_size));
  const size_t slabs = (pages + kSlotsPerSlab - 1) / kSlotsPerSlab;
  size_t fixed = 0;
  for (const auto& s : streams_)
    fixed += s->tail_keys.size() + s->tail_values.size() + s->key_codec->codebook_bytes() + s->value_codec->codebook_bytes();
  return fixed + slabs * (key_pool_->slab_bytes() + value_pool_->slab_bytes());
}

}  // namespace ringkv
