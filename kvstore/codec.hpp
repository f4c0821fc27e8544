#pragma once
// The codec contract. A PageCodec encodes one page (up to page_size tokens x head_dim channels of
// one layer, KV head and role) into bytes, decodes any rows of it, and takes part in attention
// directly on the encoded bytes: key codecs produce scores of queries against their pages, value
// codecs accumulate probability-weighted values from theirs.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kernels/rope.hpp"
#include "kvstore/calibration.hpp"
#include "kvstore/codec_spec.hpp"

namespace ringkv {

class NearestSearch;  // kvstore/kmeans.hpp

enum class CodecKind : uint8_t { Float = 1, Int = 2, KVQuant = 3, Coupled = 4, Residual = 5 };

// Where a codec's tables come from: the calibration, and which layer and head the codec serves.
struct CodecContext {
  int head_dim = 128;
  int page_size = 128;
  int layer = 0;
  int head = 0;
  const Calibration* calibration = nullptr;  // required by codecs with learned tables
  const NearestSearch* nearest = nullptr;    // where learning's k-means searches run; nullptr: the CPU
};

// One sealed page as attention sees it.
struct PageView {
  const uint8_t* bytes = nullptr;
  int tokens = 0;
  int first_position = 0;  // absolute position of row 0; rows are consecutive positions
};

class PageCodec {
 public:
  PageCodec(CodecSpec spec, Role role, const CodecContext& context);
  virtual ~PageCodec() = default;
  PageCodec(const PageCodec&) = delete;
  PageCodec& operator=(const PageCodec&) = delete;

  virtual CodecKind kind() const = 0;
  const CodecSpec& spec() const { return spec_; }
  Role role() const { return role_; }
  int head_dim() const { return head_dim_; }
  int page_size() const { return page_size_; }
  // Keys stored before RoPE (rotated when attended); values and post-RoPE keys are stored as given.
  virtual bool stores_pre_rope_keys() const { return false; }

  // Exact size of the encoding of `tokens` rows whose first row is at `first_position`.
  virtual size_t encoded_bytes(int tokens, int first_position) const = 0;
  // Bytes of learned tables this codec instance holds (amortized over the stored context).
  virtual size_t codebook_bytes() const { return 0; }

  // rows: [tokens][head_dim]; out: encoded_bytes(tokens, first_position) bytes.
  virtual void encode(const float* rows, int tokens, int first_position, uint8_t* out) const = 0;
  // Decodes rows [row_begin, row_end) of a page into out ([row_end - row_begin][head_dim]), in the
  // stored domain (pre-RoPE keys stay pre-RoPE).
  virtual void decode_rows(const PageView& page, int row_begin, int row_end, float* out) const = 0;

  // scores[q][t] = q . k_t over all rows of `pages` in order (t counts across pages), keys in the
  // post-RoPE domain. Default: decode blocks of rows, rotate if stored pre-RoPE, dot products.
  virtual void key_scores(std::span<const PageView> pages, const float* queries, int n_queries,
                          const RopeTable& rope, float* scores) const;
  // out[q][c] += sum_t probs[q][t] * v_t[c] over all rows of `pages` in order.
  virtual void accumulate_values(std::span<const PageView> pages, const float* probs, int n_queries,
                                 float* out) const;

  std::vector<float> decode_page(const PageView& page) const;

 protected:
  // Decodes `pages` a small block of rows at a time (rotated to their positions when `rope` is
  // given and keys are stored pre-RoPE) and calls visit(rows, row count, index of the first row).
  void for_each_decoded_block(std::span<const PageView> pages, const RopeTable* rope,
                              const std::function<void(const float*, int, size_t)>& visit) const;

 private:
  CodecSpec spec_;
  Role role_;
  int head_dim_;
  int page_size_;
};

// Rows held by a list of pages.
size_t total_tokens(std::span<const PageView> pages);

// sum_i a[i] * b[i] in float, vectorized (the order of the sum is the SIMD lanes').
inline float dot(const float* a, const float* b, int n) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

// Builds the codec a spec names (bf16, fp16, int, kvquant, cq, rvq) for one role, layer and head.
std::unique_ptr<PageCodec> make_codec(const CodecSpec& spec, Role role, const CodecContext& context);

// Whether a spec's codec needs learned tables, and learning them for one layer, head and role.
struct CalibrationSamples {
  const float* rows = nullptr;       // [n_rows][head_dim], pre-RoPE for keys
  const int* positions = nullptr;    // [n_rows] absolute positions (keys are rotated by them when needed)
  const float* weights = nullptr;    // [n_rows] sensitivity of each token, or nullptr for uniform
  size_t n_rows = 0;
};
bool codec_needs_calibration(const CodecSpec& spec);
// Adds this spec's tables for (layer, head, role) to `calibration`; a no-op for codecs without tables.
void learn_codec_tables(const CodecSpec& spec, Role role, const CodecContext& context, const RopeTable& rope,
                        const CalibrationSamples& samples, Calibration& calibration);

}  // namespace ringkv
