#include "kvstore/codec_coupled.hpp"

#include "kernels/bit_packing.hpp"
#include "kernels/error.hpp"
#include "kvstore/codec_learning.hpp"
#include "kvstore/kmeans.hpp"

namespace ringkv {

// Page layout: tokens x groups codes of `bits` bits, row-major (token, group).

namespace {
struct CoupledShape {
  int channels, bits;
};
CoupledShape coupled_shape(const CodecSpec& spec, int head_dim) {
  CoupledShape s{spec.get_int("channels", 8, 1, 64), spec.get_int("bits", 8, 1, 16)};
  sensitivity_weighting(spec);
  RINGKV_REQUIRE(head_dim % s.channels == 0, "codec spec '" + spec.text() + "': channels=" + std::to_string(s.channels) +
                                                 " does not divide head_dim " + std::to_string(head_dim));
  return s;
}

// Columns [group * channels, (group + 1) * channels) of rows, gathered contiguously.
std::vector<float> gather_group(const float* rows, size_t n, int head_dim, int group, int channels) {
  std::vector<float> out(n * channels);
  for (size_t t = 0; t < n; ++t)
    for (int j = 0; j < channels; ++j) out[t * channels + j] = rows[t * head_dim + group * channels + j];
  return out;
}
}  // namespace

CoupledCodec::CoupledCodec(const CodecSpec& spec, Role role, const CodecContext& context) : PageCodec(spec, role, context) {
  const CoupledShape s = coupled_shape(spec, context.head_dim);
  channels_ = s.channels, bits_ = s.bits, codes_ = 1 << s.bits, groups_ = context.head_dim / s.channels;
  RINGKV_REQUIRE(context.calibration, "codec spec '" + spec.text() + "' needs learned centroids: give a calibration file (ringkv calibrate)");
  centroids_ = context.calibration->get(table_name(spec, context.layer, context.head, role, "centroids"),
                                        {groups_, codes_, channels_}).data;
}

size_t CoupledCodec::encoded_bytes(int tokens, int) const {
  return packed_bytes(static_cast<size_t>(tokens) * groups_, bits_);
}

void CoupledCodec::encode(const float* rows, int tokens, int, uint8_t* out) const {
  std::vector<uint32_t> codes(static_cast<size_t>(tokens) * groups_);
  std::vector<uint32_t> group_codes(tokens);
  for (int g = 0; g < groups_; ++g) {
    const std::vector<float> x = gather_group(rows, tokens, head_dim(), g, channels_);
    assign_nearest(x.data(), tokens, channels_, centroid(g, 0), codes_, group_codes.data());
    for (int t = 0; t < tokens; ++t) codes[static_cast<size_t>(t) * groups_ + g] = group_codes[t];
  }
  BitWriter w(out);
  for (uint32_t c : codes) w.put(c, bits_);
  w.flush();
}

void CoupledCodec::decode_rows(const PageView& page, int row_begin, int row_end, float* out) const {
  for (int t = row_begin; t < row_end; ++t)
    for (int g = 0; g < groups_; ++g) {
      const float* c = centroid(g, read_code(page.bytes, static_cast<size_t>(t) * groups_ + g, bits_));
      std::copy(c, c + channels_, out + static_cast<size_t>(t - row_begin) * head_dim() + g * channels_);
    }
}

// Codes of one token, read once and shared by every query of the GQA group.
void CoupledCodec::read_token_codes(const PageView& page, int t, uint32_t* codes) const {
  for (int g = 0; g < groups_; ++g) codes[g] = read_code(page.bytes, static_cast<size_t>(t) * groups_ + g, bits_);
}

void CoupledCodec::key_scores(std::span<const PageView> pages, const float* queries, int n_queries, const RopeTable&,
                              float* scores) const {
  const size_t total = total_tokens(pages);
  // table[q][g][k] = q_g . centroid(g, k)
  std::vector<float> table(static_cast<size_t>(n_queries) * groups_ * codes_);
  for (int q = 0; q < n_queries; ++q)
    for (int g = 0; g < groups_; ++g)
      for (int k = 0; k < codes_; ++k) {
        const float* qv = queries + static_cast<size_t>(q) * head_dim() + g * channels_;
        const float* c = centroid(g, k);
        float s = 0;
        for (int j = 0; j < channels_; ++j) s += qv[j] * c[j];
        table[(static_cast<size_t>(q) * groups_ + g) * codes_ + k] = s;
      }
  std::vector<uint32_t> codes(groups_);
  size_t t0 = 0;
  for (const PageView& page : pages) {
    for (int t = 0; t < page.tokens; ++t) {
      read_token_codes(page, t, codes.data());
      for (int q = 0; q < n_queries; ++q) {
        const float* tq = table.data() + static_cast<size_t>(q) * groups_ * codes_;
        float s = 0;
        for (int g = 0; g < groups_; ++g) s += tq[static_cast<size_t>(g) * codes_ + codes[g]];
        scores[static_cast<size_t>(q) * total + t0 + t] = s;
      }
    }
    t0 += page.tokens;
  }
}

void CoupledCodec::accumulate_values(std::span<const PageView> pages, const float* probs, int n_queries,
                                     float* out) const {
  const size_t total = total_tokens(pages);
  // mass[q][g][k]: probability landing on centroid k of group g, multiplied by the centroids once.
  std::vector<float> mass(static_cast<size_t>(n_queries) * groups_ * codes_, 0.0f);
  std::vector<uint32_t> codes(groups_);
  size_t t0 = 0;
  for (const PageView& page : pages) {
    for (int t = 0; t < page.tokens; ++t) {
      read_token_codes(page, t, codes.data());
      for (int q = 0; q < n_queries; ++q) {
        const float p = probs[static_cast<size_t>(q) * total + t0 + t];
        float* mq = mass.data() + static_cast<size_t>(q) * groups_ * codes_;
        for (int g = 0; g < groups_; ++g) mq[static_cast<size_t>(g) * codes_ + codes[g]] += p;
      }
    }
    t0 += page.tokens;
  }
  for (int q = 0; q < n_queries; ++q) {
    float* o = out + static_cast<size_t>(q) * head_dim();
    for (int g = 0; g < groups_; ++g)
      for (int k = 0; k < codes_; ++k) {
        const float m = mass[(static_cast<size_t>(q) * groups_ + g) * codes_ + k];
        if (m == 0.0f) continue;
        const float* c = centroid(g, k);
        for (int j = 0; j < channels_; ++j) o[g * channels_ + j] += m * c[j];
      }
  }
}

void CoupledCodec::learn(const CodecSpec& spec, Role role, const CodecContext& context, const RopeTable& rope,
                         const CalibrationSamples& samples, Calibration& calibration) {
  const CoupledShape s = coupled_shape(spec, context.head_dim);
  const int groups = context.head_dim / s.channels, codes = 1 << s.bits;
  const std::vector<float> rows = rows_in_stored_domain(samples, context.head_dim, role == Role::Key, rope);
  const std::vector<float> weights = token_weights(spec, samples);
  Tensor table{{groups, codes, s.channels}, {}};
  table.data.reserve(static_cast<size_t>(groups) * codes * s.channels);
  for (int g = 0; g < groups; ++g) {
    const std::vector<float> x = gather_group(rows.data(), samples.n_rows, context.head_dim, g, s.channels);
    KMeansOptions options;
    options.clusters = codes;
    options.seed += static_cast<uint64_t>(g);
    options.search = context.nearest;
    const KMeansResult km = weighted_kmeans(x.data(), samples.n_rows, s.channels, weights.data(), options);
    table.data.insert(table.data.end(), km.centroids.begin(), km.centroids.end());
  }
  calibration.put(table_name(spec, context.layer, context.head, role, "centroids"), std::move(table));
}

}  // namespace ringkv
