#include "kvstore/codec_int.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>

#include "kernels/bit_packing.hpp"
#include "kvstore/quantize.hpp"

namespace ringkv {

// Page layout: [param_count x (fp16 lo, fp16 step)] [packed codes]. Key codes are row-major
// (tokens x head_dim), value codes channel-major (head_dim x tokens): then a 32-bit word holds
// codes of consecutive channels (keys) or consecutive tokens (values), the operand pairs the GPU's
// tensor-core products take (kernels/decode_attention_int.cuh).

IntCodec::IntCodec(const CodecSpec& spec, Role role, const CodecContext& context)
    : PageCodec(spec, role, context), bits_(spec.get_int("bits", 4, 1, 8)), group_(spec.get_int("group", 128, 1, 4096)) {}

size_t IntCodec::param_count(int tokens) const {
  const size_t d = head_dim();
  if (role() == Role::Key) return ((static_cast<size_t>(tokens) + group_ - 1) / group_) * d;
  return static_cast<size_t>(tokens) * ((d + group_ - 1) / group_);
}

size_t IntCodec::param_index(int t, int c) const {
  if (role() == Role::Key) return static_cast<size_t>(t / group_) * head_dim() + c;
  const size_t groups_per_row = (static_cast<size_t>(head_dim()) + group_ - 1) / group_;
  return static_cast<size_t>(t) * groups_per_row + c / group_;
}

size_t IntCodec::encoded_bytes(int tokens, int) const {
  return param_count(tokens) * 4 + packed_bytes(static_cast<size_t>(tokens) * head_dim(), bits_);
}

void IntCodec::encode(const float* rows, int tokens, int, uint8_t* out) const {
  const int d = head_dim();
  const int levels = 1 << bits_;
  const size_t n_params = param_count(tokens);
  std::vector<float> lo(n_params, std::numeric_limits<float>::infinity());
  std::vector<float> hi(n_params, -std::numeric_limits<float>::infinity());
  for (int t = 0; t < tokens; ++t)
    for (int c = 0; c < d; ++c) {
      const size_t p = param_index(t, c);
      const float x = rows[static_cast<size_t>(t) * d + c];
      lo[p] = std::min(lo[p], x);
      hi[p] = std::max(hi[p], x);
    }
  std::vector<UniformGrid> grids(n_params);
  for (size_t p = 0; p < n_params; ++p) {
    grids[p] = UniformGrid::fit(lo[p], hi[p], levels);
    write_fp16(out + 4 * p, grids[p].lo);
    write_fp16(out + 4 * p + 2, grids[p].step);
  }
  BitWriter codes(out + 4 * n_params);
  auto put = [&](int t, int c) { codes.put(grids[param_index(t, c)].code(rows[static_cast<size_t>(t) * d + c], levels), bits_); };
  if (role() == Role::Key) {
    for (int t = 0; t < tokens; ++t)
      for (int c = 0; c < d; ++c) put(t, c);
  } else {
    for (int c = 0; c < d; ++c)
      for (int t = 0; t < tokens; ++t) put(t, c);
  }
  codes.flush();
}

void IntCodec::decode_rows(const PageView& page, int row_begin, int row_end, float* out) const {
  const int d = head_dim(), n = row_end - row_begin;
  const uint8_t* codes = page.bytes + 4 * param_count(page.tokens);
  auto lo = [&](int t, int c) { return read_fp16(page.bytes + 4 * param_index(t, c)); };
  auto step = [&](int t, int c) { return read_fp16(page.bytes + 4 * param_index(t, c) + 2); };
  if (role() == Role::Value) {  // channel-major: each channel's run of rows is contiguous
    std::vector<uint16_t> run(n);
    for (int c = 0; c < d; ++c) {
      unpack_codes(codes, static_cast<size_t>(c) * page.tokens + row_begin, n, bits_, run.data());
      for (int i = 0; i < n; ++i)
        out[static_cast<size_t>(i) * d + c] = lo(row_begin + i, c) + step(row_begin + i, c) * static_cast<float>(run[i]);
    }
    return;
  }
  std::vector<uint16_t> row_codes(d);
  std::vector<float> row_lo(d), row_step(d);  // per channel, for the current key group
  int loaded = -1;                            // key token group whose parameters are loaded
  for (int t = row_begin; t < row_end; ++t) {
    if (t / group_ != loaded) {
      for (int c = 0; c < d; ++c) row_lo[c] = lo(t, c), row_step[c] = step(t, c);
      loaded = t / group_;
    }
    unpack_codes(codes, static_cast<size_t>(t) * d, d, bits_, row_codes.data());
    float* row = out + static_cast<size_t>(t - row_begin) * d;
    for (int c = 0; c < d; ++c) row[c] = row_lo[c] + row_step[c] * static_cast<float>(row_codes[c]);
  }
}

namespace {
// The 8 / B codes of B bits each byte value packs, as floats.
template <int B>
const std::array<std::array<float, 8 / B>, 256>& byte_codes() {
  static const auto table = [] {
    std::array<std::array<float, 8 / B>, 256> t{};
    for (int v = 0; v < 256; ++v)
      for (int j = 0; j < 8 / B; ++j) t[v][j] = static_cast<float>((v >> (j * B)) & ((1 << B) - 1));
    return t;
  }();
  return table;
}

template <int B>
void bytes_as_floats(const uint8_t* bytes, size_t n_bytes, float* out) {
  const auto& table = byte_codes<B>();
  for (size_t i = 0; i < n_bytes; ++i) std::memcpy(out + i * (8 / B), table[bytes[i]].data(), sizeof(float) * (8 / B));
}
}  // namespace

void IntCodec::codes_as_floats(const uint8_t* codes, size_t first, int count, float* out) const {
  const size_t bit = first * bits_, bits = static_cast<size_t>(count) * bits_;
  if (8 % bits_ == 0 && bit % 8 == 0 && bits % 8 == 0) {  // whole bytes: a table per byte value
    const uint8_t* bytes = codes + bit / 8;
    switch (bits_) {
      case 1: return bytes_as_floats<1>(bytes, bits / 8, out);
      case 2: return bytes_as_floats<2>(bytes, bits / 8, out);
      case 4: return bytes_as_floats<4>(bytes, bits / 8, out);
      default: return bytes_as_floats<8>(bytes, bits / 8, out);
    }
  }
  thread_local std::vector<uint16_t> raw;
  raw.resize(static_cast<size_t>(count));
  unpack_codes(codes, first, count, bits_, raw.data());
  for (int i = 0; i < count; ++i) out[i] = static_cast<float>(raw[i]);
}

void IntCodec::key_scores(std::span<const PageView> pages, const float* queries, int n_queries, const RopeTable&,
                          float* scores) const {
  const int d = head_dim();
  const size_t total = total_tokens(pages);
  std::vector<float> lo(d), step(d), scaled(static_cast<size_t>(n_queries) * d), base(n_queries), row(d);
  size_t first = 0;
  for (const PageView& page : pages) {
    const uint8_t* codes = page.bytes + 4 * param_count(page.tokens);
    for (int g0 = 0; g0 < page.tokens; g0 += group_) {  // tokens sharing each channel's (lo, step)
      for (int c = 0; c < d; ++c) {
        const uint8_t* param = page.bytes + 4 * param_index(g0, c);
        lo[c] = read_fp16(param), step[c] = read_fp16(param + 2);
      }
      for (int q = 0; q < n_queries; ++q) {
        const float* qv = queries + static_cast<size_t>(q) * d;
        float* qs = scaled.data() + static_cast<size_t>(q) * d;
        double b = 0;
        for (int c = 0; c < d; ++c) {
          qs[c] = qv[c] * step[c];
          b += static_cast<double>(qv[c]) * lo[c];
        }
        base[q] = static_cast<float>(b);
      }
      for (int t = g0; t < std::min(page.tokens, g0 + group_); ++t) {
        codes_as_floats(codes, static_cast<size_t>(t) * d, d, row.data());
        for (int q = 0; q < n_queries; ++q)
          scores[static_cast<size_t>(q) * total + first + t] = base[q] + dot(scaled.data() + static_cast<size_t>(q) * d, row.data(), d);
      }
    }
    first += page.tokens;
  }
}

void IntCodec::accumulate_values(std::span<const PageView> pages, const float* probs, int n_queries, float* out) const {
  const int d = head_dim();
  const size_t total = total_tokens(pages);
  std::vector<float> lo, step, scaled, run;  // per token; [query][token] p * step; a channel's codes
  std::vector<double> lo_sum(n_queries);
  size_t first = 0;
  for (const PageView& page : pages) {
    const int n = page.tokens;
    const uint8_t* codes = page.bytes + 4 * param_count(n);
    lo.resize(n), step.resize(n), scaled.resize(static_cast<size_t>(n_queries) * n), run.resize(n);
    for (int c0 = 0; c0 < d; c0 += group_) {  // channels sharing each token's (lo, step)
      for (int t = 0; t < n; ++t) {
        const uint8_t* param = page.bytes + 4 * param_index(t, c0);
        lo[t] = read_fp16(param), step[t] = read_fp16(param + 2);
      }
      for (int q = 0; q < n_queries; ++q) {
        const float* p = probs + static_cast<size_t>(q) * total + first;
        lo_sum[q] = 0;
        for (int t = 0; t < n; ++t) {
          scaled[static_cast<size_t>(q) * n + t] = p[t] * step[t];
          lo_sum[q] += static_cast<double>(p[t]) * lo[t];
        }
      }
      for (int c = c0; c < std::min(d, c0 + group_); ++c) {
        codes_as_floats(codes, static_cast<size_t>(c) * n, n, run.data());
        for (int q = 0; q < n_queries; ++q)
          out[static_cast<size_t>(q) * d + c] +=
              static_cast<float>(lo_sum[q]) + dot(scaled.data() + static_cast<size_t>(q) * n, run.data(), n);
      }
    }
    first += n;
  }
}

}  // namespace ringkv
