#include "kvstore/codec_residual.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

#include "kernels/bit_packing.hpp"
#include "kernels/error.hpp"
#include "kvstore/codec_learning.hpp"
#include "kvstore/kmeans.hpp"
#include "kvstore/quantize.hpp"

namespace ringkv {

// Page layout: tokens x fp16 scale (standard deviation), then tokens x groups x depth codes of
// ceil(log2(codes)) bits, ordered (token, group, level).

ResidualParams ResidualParams::from(const CodecSpec& spec, int head_dim) {
  ResidualParams s{spec.get_int("depth", 8, 1, 32), spec.get_int("codes", 256, 2, 65536), spec.get_int("group", 8, 1, 1024),
                   spec.get_int("prerope", 1, 0, 1) == 1};
  sensitivity_weighting(spec);
  RINGKV_REQUIRE(head_dim % s.group == 0, "codec spec '" + spec.text() + "': group=" + std::to_string(s.group) +
                                              " does not divide head_dim " + std::to_string(head_dim));
  return s;
}

int ResidualParams::code_bits() const { return std::bit_width(static_cast<unsigned>(codes - 1)); }

namespace {

// Keys: group j holds channels j, j + G, j + 2G, ... (G groups), so each group spans the whole head
// and RoPE's paired channels and outlier channels spread over groups; values: contiguous runs.
std::vector<int> group_channels(Role role, int head_dim, int group) {
  const int groups = head_dim / group;
  std::vector<int> channel(head_dim);
  for (int g = 0; g < groups; ++g)
    for (int j = 0; j < group; ++j) channel[g * group + j] = role == Role::Key ? g + j * groups : g * group + j;
  return channel;
}

// The scale of a token vector: its standard deviation, or its root-mean-square when the vector is
// (nearly) constant, so that a constant vector keeps its value instead of collapsing to zero.
float vector_scale(const float* x, int n) {
  double m = 0, s2 = 0, sq = 0;
  for (int i = 0; i < n; ++i) m += x[i], sq += static_cast<double>(x[i]) * x[i];
  m /= n;
  for (int i = 0; i < n; ++i) s2 += (x[i] - m) * (x[i] - m);
  const double sd = std::sqrt(s2 / n), rms = std::sqrt(sq / n);
  return static_cast<float>(sd > 1e-3 * rms ? sd : rms);
}

// Rows scaled by their fp16-stored std and regrouped: out[(t * groups + g) * group + j].
std::vector<float> scaled_groups(const float* rows, size_t tokens, int head_dim, const std::vector<int>& channel_of,
                                 std::vector<float>* stds) {
  std::vector<float> out(tokens * head_dim);
  for (size_t t = 0; t < tokens; ++t) {
    const float* x = rows + t * head_dim;
    const float sd = fp16_to_float(store_fp16(vector_scale(x, head_dim)));
    if (stds) stds->push_back(sd);
    const float inv = sd > 0 ? 1.0f / sd : 0.0f;
    for (int i = 0; i < head_dim; ++i) out[t * head_dim + i] = x[channel_of[i]] * inv;
  }
  return out;
}
}  // namespace

ResidualCodec::ResidualCodec(const CodecSpec& spec, Role role, const CodecContext& context) : PageCodec(spec, role, context) {
  const ResidualParams s = ResidualParams::from(spec, context.head_dim);
  depth_ = s.depth, codes_ = s.codes, group_ = s.group, pre_rope_ = s.pre_rope;
  code_bits_ = s.code_bits();
  groups_ = context.head_dim / group_;
  channel_of_ = group_channels(role, context.head_dim, group_);
  RINGKV_REQUIRE(context.calibration, "codec spec '" + spec.text() + "' needs learned codebooks: give a calibration file (ringkv calibrate)");
  codebooks_ = context.calibration->get(table_name(spec, context.layer, context.head, role, "codebooks"),
                                        {depth_, codes_, group_}).data;
}

namespace {
size_t residual_page_bytes(int tokens, int groups, int depth, int code_bits) {
  return static_cast<size_t>(tokens) * 2 + packed_bytes(static_cast<size_t>(tokens) * groups * depth, code_bits);
}
}  // namespace

size_t ResidualCodec::encoded_bytes(int tokens, int) const { return residual_page_bytes(tokens, groups_, depth_, code_bits_); }

size_t ResidualCodec::page_bytes(const CodecSpec& spec, int head_dim, int tokens) {
  const ResidualParams s = ResidualParams::from(spec, head_dim);
  return residual_page_bytes(tokens, head_dim / s.group, s.depth, s.code_bits());
}

void ResidualCodec::encode(const float* rows, int tokens, int, uint8_t* out) const {
  std::vector<float> stds;
  std::vector<float> residual = scaled_groups(rows, tokens, head_dim(), channel_of_, &stds);
  for (int t = 0; t < tokens; ++t) write_fp16(out + 2 * t, stds[t]);
  const size_t vectors = static_cast<size_t>(tokens) * groups_;
  std::vector<uint32_t> level_codes(vectors), codes(vectors * depth_);
  for (int l = 0; l < depth_; ++l) {
    const float* book = codebooks_.data() + static_cast<size_t>(l) * codes_ * group_;
    assign_nearest(residual.data(), vectors, group_, book, codes_, level_codes.data());
    for (size_t v = 0; v < vectors; ++v) {
      codes[v * depth_ + l] = level_codes[v];
      const float* c = book + static_cast<size_t>(level_codes[v]) * group_;
      for (int j = 0; j < group_; ++j) residual[v * group_ + j] -= c[j];
    }
  }
  BitWriter w(out + static_cast<size_t>(tokens) * 2);
  for (uint32_t c : codes) w.put(c, code_bits_);
  w.flush();
}

void ResidualCodec::decode_rows(const PageView& page, int row_begin, int row_end, float* out) const {
  const uint8_t* codes = page.bytes + static_cast<size_t>(page.tokens) * 2;
  std::vector<float> sum(group_);
  for (int t = row_begin; t < row_end; ++t) {
    const float sd = read_fp16(page.bytes + 2 * t);
    float* row = out + static_cast<size_t>(t - row_begin) * head_dim();
    for (int g = 0; g < groups_; ++g) {
      std::fill(sum.begin(), sum.end(), 0.0f);
      for (int l = 0; l < depth_; ++l) {
        const uint32_t code = read_code(codes, (static_cast<size_t>(t) * groups_ + g) * depth_ + l, code_bits_);
        const float* c = codebooks_.data() + (static_cast<size_t>(l) * codes_ + code) * group_;
        for (int j = 0; j < group_; ++j) sum[j] += c[j];
      }
      for (int j = 0; j < group_; ++j) row[channel_of_[g * group_ + j]] = sum[j] * sd;
    }
  }
}

void ResidualCodec::learn(const CodecSpec& spec, Role role, const CodecContext& context, const RopeTable& rope,
                          const CalibrationSamples& samples, Calibration& calibration) {
  const ResidualParams s = ResidualParams::from(spec, context.head_dim);
  const int groups = context.head_dim / s.group;
  const std::vector<float> rows = rows_in_stored_domain(samples, context.head_dim, role == Role::Key && !s.pre_rope, rope);
  const std::vector<float> token_w = token_weights(spec, samples);
  std::vector<float> residual =
      scaled_groups(rows.data(), samples.n_rows, context.head_dim, group_channels(role, context.head_dim, s.group), nullptr);
  const size_t vectors = samples.n_rows * groups;
  std::vector<float> weights(vectors);
  for (size_t v = 0; v < vectors; ++v) weights[v] = token_w[v / groups];
  Tensor table{{s.depth, s.codes, s.group}, {}};
  for (int l = 0; l < s.depth; ++l) {
    KMeansOptions options;
    options.clusters = s.codes;
    options.iterations = 15;
    options.seed += static_cast<uint64_t>(l);
    options.search = context.nearest;
    const KMeansResult km = weighted_kmeans(residual.data(), vectors, s.group, weights.data(), options);
    for (size_t v = 0; v < vectors; ++v)
      for (int j = 0; j < s.group; ++j)
        residual[v * s.group + j] -= km.centroids[static_cast<size_t>(km.assignment[v]) * s.group + j];
    table.data.insert(table.data.end(), km.centroids.begin(), km.centroids.end());
  }
  calibration.put(table_name(spec, context.layer, context.head, role, "codebooks"), std::move(table));
}

}  // namespace ringkv
