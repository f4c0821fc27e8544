#include "kvstore/codec_kvquant.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "kernels/bit_packing.hpp"
#include "kernels/error.hpp"
#include "kvstore/codec_learning.hpp"
#include "kvstore/kmeans.hpp"
#include "kvstore/quantize.hpp"

namespace ringkv {

// Page layout, in order:
//   sink rows      n_sink x head_dim fp16 (rows whose position is below `sink`)
//   ranges         one (fp16 lo, fp16 hi) per quantized vector: per channel for keys, per token for values
//   codes          dense rows x head_dim codes of `bits` bits, row-major
//   outliers       per vector, `per_vector` entries of (uint16 index within the vector, fp16 value)

KVQuantParams KVQuantParams::from(const CodecSpec& spec) {
  KVQuantParams p;
  p.bits = spec.get_int("bits", 3, 1, 8);
  p.outliers = spec.get_double("outliers", 0.0, 0.0, 0.5);
  p.sink = spec.get_int("sink", 0, 0, 1 << 20);
  p.nuq = spec.get_int("nuq", 1, 0, 1) == 1;
  p.qnorm = spec.get_int("qnorm", 0, 0, 1) == 1;
  p.pre_rope = spec.get_int("prerope", 1, 0, 1) == 1;
  sensitivity_weighting(spec);  // validated here, used when learning
  return p;
}

struct KVQuantCodec::Layout {
  int n_sink, dense;
  int vectors, vector_length, per_vector;  // quantized vectors: channels (keys) or dense rows (values)
  size_t ranges_at, codes_at, outliers_at, bytes;
};

namespace {

int outliers_per_vector(double fraction, int length) {
  return std::min(length, static_cast<int>(std::lround(fraction * length)));
}

// Element i of vector v, in a row-major [dense][head_dim] block.
inline size_t element(Role role, int head_dim, int v, int i) {
  return role == Role::Key ? static_cast<size_t>(i) * head_dim + v : static_cast<size_t>(v) * head_dim + i;
}

// Range and outliers of every vector of a block of dense rows: what encoding stores besides codes,
// and what learning needs to normalize calibration values exactly as encoding will.
struct VectorStats {
  std::vector<float> lo, hi;              // fp16-rounded range of the non-outlier elements
  std::vector<uint16_t> outlier_index;    // [vectors][per_vector], indices within the vector
  std::vector<uint8_t> is_outlier;        // [dense * head_dim] in row-major order
};

VectorStats vector_stats(const float* dense_rows, Role role, int head_dim, int vectors, int length, int per_vector) {
  VectorStats s;
  s.lo.resize(vectors);
  s.hi.resize(vectors);
  s.outlier_index.resize(static_cast<size_t>(vectors) * per_vector);
  s.is_outlier.assign(static_cast<size_t>(vectors) * length, 0);
  std::vector<float> x(length);
  std::vector<uint16_t> order(length);
  for (int v = 0; v < vectors; ++v) {
    for (int i = 0; i < length; ++i) x[i] = dense_rows[element(role, head_dim, v, i)];
    if (per_vector > 0) {
      const float mean = std::accumulate(x.begin(), x.end(), 0.0f) / static_cast<float>(length);
      std::iota(order.begin(), order.end(), uint16_t{0});
      std::nth_element(order.begin(), order.begin() + per_vector, order.end(), [&](uint16_t a, uint16_t b) {
        const float da = std::fabs(x[a] - mean), db = std::fabs(x[b] - mean);
        return da != db ? da > db : a < b;
      });
      std::sort(order.begin(), order.begin() + per_vector);
      for (int j = 0; j < per_vector; ++j) {
        s.outlier_index[static_cast<size_t>(v) * per_vector + j] = order[j];
        s.is_outlier[element(role, head_dim, v, order[j])] = 1;
      }
    }
    float lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < length; ++i)
      if (!s.is_outlier[element(role, head_dim, v, i)]) {
        lo = std::min(lo, x[i]);
        hi = std::max(hi, x[i]);
      }
    if (lo > hi) lo = hi = 0.0f;  // every element is an outlier
    s.lo[v] = fp16_to_float(store_fp16(lo));
    s.hi[v] = fp16_to_float(store_fp16(hi));
  }
  return s;
}

// Maps x into the normalized range of its vector, [-1, 1] for non-outliers.
inline float normalize(float x, float lo, float hi) {
  const float half = 0.5f * (hi - lo);
  return half > 0.0f ? (x - 0.5f * (hi + lo)) / half : 0.0f;
}
inline float denormalize(float level, float lo, float hi) { return 0.5f * (hi + lo) + 0.5f * (hi - lo) * level; }

std::vector<float> uniform_levels(int count) {
  std::vector<float> levels(count);
  for (int i = 0; i < count; ++i) levels[i] = count == 1 ? 0.0f : -1.0f + 2.0f * i / (count - 1);
  return levels;
}

std::vector<float> midpoints(const std::vector<float>& levels) {
  std::vector<float> t(levels.size() - 1);
  for (size_t i = 0; i + 1 < levels.size(); ++i) t[i] = 0.5f * (levels[i] + levels[i + 1]);
  return t;
}

inline uint32_t nearest_level(float x, const std::vector<float>& thresholds) {
  return static_cast<uint32_t>(std::upper_bound(thresholds.begin(), thresholds.end(), x) - thresholds.begin());
}

}  // namespace

KVQuantCodec::KVQuantCodec(const CodecSpec& spec, Role role, const CodecContext& context)
    : PageCodec(spec, role, context), params_(KVQuantParams::from(spec)) {
  const int count = 1 << params_.bits;
  if (params_.nuq) {
    RINGKV_REQUIRE(context.calibration, "codec spec '" + spec.text() +
                                            "' uses learned NUQ levels: give a calibration file (ringkv calibrate), "
                                            "or use nuq=0 for uniform levels");
    levels_ = context.calibration->get(table_name(spec, context.layer, context.head, role, "levels"), {count}).data;
    RINGKV_REQUIRE(std::is_sorted(levels_.begin(), levels_.end()),
                   "calibration table of '" + spec.text() + "' holds unsorted NUQ levels (corrupt calibration?)");
  } else {
    levels_ = uniform_levels(count);
  }
  thresholds_ = midpoints(levels_);
}

KVQuantCodec::Layout KVQuantCodec::layout_of(const KVQuantParams& params, Role role, int d, int tokens, int first_position) {
  Layout l;
  l.n_sink = std::clamp(params.sink - first_position, 0, tokens);
  l.dense = tokens - l.n_sink;
  l.vectors = role == Role::Key ? d : l.dense;
  l.vector_length = role == Role::Key ? l.dense : d;
  l.per_vector = l.dense == 0 ? 0 : outliers_per_vector(params.outliers, l.vector_length);
  if (role == Role::Key && l.dense == 0) l.vectors = 0;
  l.ranges_at = static_cast<size_t>(l.n_sink) * d * 2;
  l.codes_at = l.ranges_at + static_cast<size_t>(l.vectors) * 4;
  l.outliers_at = l.codes_at + packed_bytes(static_cast<size_t>(l.dense) * d, params.bits);
  l.bytes = l.outliers_at + static_cast<size_t>(l.vectors) * l.per_vector * 4;
  return l;
}

KVQuantCodec::Layout KVQuantCodec::layout(int tokens, int first_position) const {
  return layout_of(params_, role(), head_dim(), tokens, first_position);
}

size_t KVQuantCodec::page_bytes(const CodecSpec& spec, Role role, int head_dim, int tokens, int first_position) {
  return layout_of(KVQuantParams::from(spec), role, head_dim, tokens, first_position).bytes;
}

size_t KVQuantCodec::encoded_bytes(int tokens, int first_position) const { return layout(tokens, first_position).bytes; }

void KVQuantCodec::encode(const float* rows, int tokens, int first_position, uint8_t* out) const {
  const Layout l = layout(tokens, first_position);
  const int d = head_dim();
  for (size_t i = 0; i < static_cast<size_t>(l.n_sink) * d; ++i) write_fp16(out + 2 * i, rows[i]);
  const float* dense = rows + static_cast<size_t>(l.n_sink) * d;
  const VectorStats s = vector_stats(dense, role(), d, l.vectors, l.vector_length, l.per_vector);
  for (int v = 0; v < l.vectors; ++v) {
    write_fp16(out + l.ranges_at + 4 * v, s.lo[v]);
    write_fp16(out + l.ranges_at + 4 * v + 2, s.hi[v]);
  }
  BitWriter codes(out + l.codes_at);
  for (int t = 0; t < l.dense; ++t)
    for (int c = 0; c < d; ++c) {
      const int v = role() == Role::Key ? c : t;
      const float x = std::clamp(normalize(dense[static_cast<size_t>(t) * d + c], s.lo[v], s.hi[v]), -1.0f, 1.0f);
      codes.put(nearest_level(x, thresholds_), params_.bits);
    }
  codes.flush();
  uint8_t* o = out + l.outliers_at;
  for (int v = 0; v < l.vectors; ++v)
    for (int j = 0; j < l.per_vector; ++j, o += 4) {
      const uint16_t idx = s.outlier_index[static_cast<size_t>(v) * l.per_vector + j];
      std::memcpy(o, &idx, 2);
      write_fp16(o + 2, dense[element(role(), d, v, idx)]);
    }
}

void KVQuantCodec::decode_rows(const PageView& page, int row_begin, int row_end, float* out) const {
  const Layout l = layout(page.tokens, page.first_position);
  const int d = head_dim();
  const uint8_t* b = page.bytes;
  std::vector<uint16_t> codes(d);
  // Keys share one range per channel over the page: read them once per call.
  std::vector<float> lo, hi;
  if (role() == Role::Key && l.dense > 0)
    for (int c = 0; c < d; ++c) lo.push_back(read_fp16(b + l.ranges_at + 4 * c)), hi.push_back(read_fp16(b + l.ranges_at + 4 * c + 2));
  for (int t = row_begin; t < row_end; ++t) {
    float* row = out + static_cast<size_t>(t - row_begin) * d;
    if (t < l.n_sink) {
      for (int c = 0; c < d; ++c) row[c] = read_fp16(b + 2 * (static_cast<size_t>(t) * d + c));
      continue;
    }
    const int dt = t - l.n_sink;
    unpack_codes(b + l.codes_at, static_cast<size_t>(dt) * d, d, params_.bits, codes.data());
    if (role() == Role::Key) {
      for (int c = 0; c < d; ++c) row[c] = denormalize(levels_[codes[c]], lo[c], hi[c]);
    } else {
      const float rlo = read_fp16(b + l.ranges_at + 4 * dt), rhi = read_fp16(b + l.ranges_at + 4 * dt + 2);
      for (int c = 0; c < d; ++c) row[c] = denormalize(levels_[codes[c]], rlo, rhi);
    }
  }
  // Sparse outliers replace their dense codes. Keys: each channel lists token indices; values: each
  // token lists channel indices.
  const int dense_begin = std::max(row_begin - l.n_sink, 0), dense_end = row_end - l.n_sink;
  if (l.per_vector == 0 || dense_end <= dense_begin) return;
  const int v_begin = role() == Role::Key ? 0 : dense_begin, v_end = role() == Role::Key ? l.vectors : dense_end;
  for (int v = v_begin; v < v_end; ++v) {
    const uint8_t* o = b + l.outliers_at + static_cast<size_t>(v) * l.per_vector * 4;
    for (int j = 0; j < l.per_vector; ++j, o += 4) {
      uint16_t idx;
      std::memcpy(&idx, o, 2);
      const int dt = role() == Role::Key ? idx : v, c = role() == Role::Key ? v : idx;
      if (dt >= dense_begin && dt < dense_end)
        out[static_cast<size_t>(dt + l.n_sink - row_begin) * d + c] = read_fp16(o + 2);
    }
  }
}

bool KVQuantCodec::needs_calibration(const CodecSpec& spec) { return KVQuantParams::from(spec).nuq; }

void KVQuantCodec::learn(const CodecSpec& spec, Role role, const CodecContext& context, const RopeTable& rope,
                         const CalibrationSamples& samples, Calibration& calibration) {
  const KVQuantParams p = KVQuantParams::from(spec);
  if (!p.nuq) return;
  const int d = context.head_dim;
  const std::vector<float> rows = rows_in_stored_domain(samples, d, role == Role::Key && !p.pre_rope, rope);
  const std::vector<float> weights = token_weights(spec, samples);
  // Normalize calibration rows page by page exactly as encode() will, keeping non-outlier values.
  std::vector<float> values, value_weights;
  for (size_t start = 0; start < samples.n_rows; start += context.page_size) {
    const int tokens = static_cast<int>(std::min<size_t>(context.page_size, samples.n_rows - start));
    const int first = samples.positions ? samples.positions[start] : static_cast<int>(start);
    const int n_sink = std::clamp(p.sink - first, 0, tokens), dense = tokens - n_sink;
    if (dense == 0) continue;
    const int vectors = role == Role::Key ? d : dense, length = role == Role::Key ? dense : d;
    const float* block = rows.data() + (start + n_sink) * d;
    const VectorStats s = vector_stats(block, role, d, vectors, length, outliers_per_vector(p.outliers, length));
    for (int t = 0; t < dense; ++t)
      for (int c = 0; c < d; ++c) {
        if (s.is_outlier[static_cast<size_t>(t) * d + c]) continue;
        const int v = role == Role::Key ? c : t;
        values.push_back(std::clamp(normalize(block[static_cast<size_t>(t) * d + c], s.lo[v], s.hi[v]), -1.0f, 1.0f));
        value_weights.push_back(weights[start + n_sink + t]);
      }
  }
  RINGKV_REQUIRE(!values.empty(), "no calibration values left for " + spec.text() + " after sinks and outliers");
  KMeansOptions options;
  options.clusters = 1 << p.bits;
  options.search = context.nearest;
  KMeansResult km = weighted_kmeans(values.data(), values.size(), 1, value_weights.data(), options);
  std::vector<float> levels = km.centroids;
  std::sort(levels.begin(), levels.end());
  if (p.qnorm) {
    // Q-Norm: affine map of the levels so dequantized values match the weighted mean and standard
    // deviation of the normalized calibration values.
    const std::vector<float> thresholds = midpoints(levels);
    double w = 0, m = 0, mq = 0, s2 = 0, sq2 = 0;
    for (size_t i = 0; i < values.size(); ++i) {
      const double q = levels[nearest_level(values[i], thresholds)];
      w += value_weights[i];
      m += value_weights[i] * values[i];
      mq += value_weights[i] * q;
      s2 += value_weights[i] * values[i] * values[i];
      sq2 += value_weights[i] * q * q;
    }
    m /= w, mq /= w;
    const double sd = std::sqrt(std::max(s2 / w - m * m, 0.0)), sdq = std::sqrt(std::max(sq2 / w - mq * mq, 0.0));
    if (sdq > 0)
      for (float& level : levels) level = static_cast<float>((level - mq) * (sd / sdq) + m);
  }
  calibration.put(table_name(spec, context.layer, context.head, role, "levels"),
                  Tensor{{static_cast<int64_t>(levels.size())}, levels});
}

}  // namespace ringkv
