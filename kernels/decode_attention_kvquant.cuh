#pragma once
// Decode attention over KVQuant pages of 1 to 4 bits, reading the codes in place as the INT kernel
// does (kernels/decode_attention_int.cuh): each warp is a split with
// its own online softmax, copying pages into shared memory ahead of its work (cp.async); both
// products run on tensor cores (mma.sync m16n8k16, fp16 in, fp32 accumulate). Pages without sink
// rows only: the launcher gives the first pages, which hold them, to the tiled kernel.
//   keys:   k[t][c] = mid_c + half_c * level[code], made in fp16 (kernels/kvquant_lane_codes.cuh:
//           codes as integers where the levels are even, a table of level pairs else); pre-RoPE keys are turned
//           to their offset t in the page in registers (cos and sin from a table in shared memory,
//           one per block), and the query turned back by the page's first position P:
//           q . R(P + t) k = (R(P)^T q) . (R(t) k);
//   values: v[t][c] = mid_t + half_t * level[code]: the codes or levels, two tokens to a pair (four
//           token rows of a lane's 16 channels), times the probabilities times half_t (or the even
//           levels' step), passed from the score fragments to the B operand by movmatrix; sum(p * mid_t) apart;
//   outliers: each sparse (index, value) adds (value - dense) times the turned query (keys) or the
//           probability (values), gathered in shared memory, then added to the scores or to the
//           output.
// The CPU twin is partial_attention over KVQuantCodec pages.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include <type_traits>

#include "kernels/copy_async.cuh"
#include "kernels/fast_exp2.cuh"
#include "kernels/kvquant_lane_codes.cuh"
#include "kernels/mma.cuh"
#include "kernels/page_tile.cuh"

namespace ringkv::kernels {

constexpr int kKVQuantMaxWarps = 8;  // warps of a block: at most 255 registers a thread, one block a multiprocessor
constexpr int kKVQuantRopeTableBytes = 128 * 4 * 4 * 16;  // [token][quad lane][k-tile < 4] (cos, sin) pairs of both halves
constexpr int kKVQuantFixBytes = 2 * 128 * 8 * 4;        // a warp's [128][8] int and [128][8] float arrays, with outliers

// Bytes of a warp's tables of level pairs (keys, values) where the levels are not even.
template <int BITS>
__host__ __device__ constexpr int kvquant_pair_tables_bytes() {
  return 2 * 4 << (2 * BITS);
}

// Bytes of a KVQuant page without sink rows (either role): (lo, hi) per vector, codes, outliers.
template <int BITS>
__host__ __device__ constexpr int kvquant_dense_page_bytes(int per_vector) {
  return 128 * 4 + 128 * 128 * BITS / 8 + 128 * per_vector * 4;
}

struct KVQuantDenseParams {
  const uint8_t* const* key_pages;    // [streams][n_pages] device pointers, 16-byte aligned
  const uint8_t* const* value_pages;  // [streams][n_pages]
  const float* const* key_levels;     // [streams] 2^BITS levels, sorted
  const float* const* value_levels;   // [streams]
  const float* inv_freq;              // [64] RoPE frequencies (rotate-half pairs c, c + 64)
  int n_pages, first_page, pages_per_split, splits, streams;
  int per_vector;  // sparse outliers per vector
};

// Byte offset of the table entry of token t, quad lane i and k-tile kt < 4: the (cos, sin) fp16
// pairs of halves 0 and 1 of a key row's registers (kernels/kvquant_lane_codes.cuh). Swizzled so that the 8
// lanes of a quarter warp (two tokens, four quad lanes) load 16 bytes from distinct banks.
__device__ inline int rope_entry(int t, int i, int kt) { return t * 256 + i * 64 + ((kt ^ ((i >> 1) | ((t & 1) << 1))) << 4); }

template <typename Reader>
__device__ void fill_rope_table(uint8_t* table, const float* __restrict__ inv_freq) {
  for (int x = threadIdx.x; x < 128 * 4 * 4 * 2; x += blockDim.x) {
    const int t = x >> 5, i = (x >> 3) & 3, kt = (x >> 1) & 3, h = x & 1;
    const int2 e = Reader::elements(kt, h);
    const float2 a = offset_angle_cos_sin(t, inv_freq[16 * i + e.x]), b = offset_angle_cos_sin(t, inv_freq[16 * i + e.y]);
    const __half2 c = __floats2half2_rn(a.x, b.x), s = __floats2half2_rn(a.y, b.y);
    *reinterpret_cast<uint2*>(table + rope_entry(t, i, kt) + 8 * h) = {as_u32(c), as_u32(s)};
  }
}

// cos and sin of token offset t for channel j < 64, from the table.
template <typename Reader>
__device__ float2 rope_table_cos_sin(const uint8_t* table, int t, int j) {
  const int i = j / 16, e = j % 16;
  int at = 0;
#pragma unroll
  for (int kt = 0; kt < 4; ++kt)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int2 el = Reader::elements(kt, h);
      if (el.x == e) at = rope_entry(t, i, kt) + 8 * h;
      if (el.y == e) at = rope_entry(t, i, kt) + 8 * h + 2;
    }
  return {__half2float(*reinterpret_cast<const __half*>(table + at)), __half2float(*reinterpret_cast<const __half*>(table + at + 4))};
}

// Sparse outliers' terms are gathered in shared memory as fixed-point integers: integer atomic adds
// are native on shared memory (float ones are compare-and-swap loops, and lanes naming one row
// would wait on each other). A row gathers at most 128 terms (one per vector crossing it), so with
// every term within `bound` (the warp's largest; the fp16 cos and sin of key terms may pass it by
// 2^-11), 2^(23 - e) where bound < 2^e keeps each sum below 2^30 and each term to 2^-24 of the
// bound. Returns (the scale, its inverse), powers of two.
__device__ inline float2 fixed_point_scale(float bound) {
  for (int o = 1; o < 32; o <<= 1) bound = fmaxf(bound, __shfl_xor_sync(0xffffffffu, bound, o));
  int e = 0;
  frexpf(bound, &e);  // bound < 2^e (e = 0 for 0; fmaxf keeps NaN out)
  e = min(max(e, -90), 100);
  return {ldexpf(1.f, 23 - e), ldexpf(1.f, e - 23)};
}

// Entry `at` of a page's sparse outliers (after its codes): the index within its vector, the value.
__device__ inline int outlier_index(const uint8_t* entries, int at) { return *reinterpret_cast<const uint16_t*>(entries + 4 * at); }
__device__ inline float outlier_value(const uint8_t* entries, int at) {
  return __half2float(*reinterpret_cast<const __half*>(entries + 4 * at + 2));
}

// Code `index` of a page's row-major codes (LSB-first; at 3 bits a code may straddle two bytes).
template <int BITS>
__device__ inline int code_at(const uint8_t* codes, int index) {
  const int bit = index * BITS;
  const uint32_t two = codes[bit >> 3] | static_cast<uint32_t>(codes[(bit >> 3) + 1]) << 8;
  return (two >> (bit & 7)) & ((1 << BITS) - 1);
}

// grid: ceil(splits * streams / warps) blocks of `warps` warps (warp w of block b: split (b * warps
// + w) % splits of stream (b * warps + w) / splits); dynamic shared memory: the RoPE table where
// PRE_ROPE (keys stored before RoPE), then per warp 3 page slots, with outliers kKVQuantFixBytes,
// and with TABLE (levels not even) kvquant_pair_tables_bytes<BITS>(). queries: [streams][NQ][128];
// split_out: [splits][streams][NQ][128], split_lse: [splits][streams][NQ].
template <int BITS, int NQ, bool PRE_ROPE, bool TABLE>
__global__ void __launch_bounds__(32 * kKVQuantMaxWarps, 1)
    decode_attention_kvquant_kernel(KVQuantDenseParams p, const float* __restrict__ queries, float scale,
                                    float* __restrict__ split_out, float* __restrict__ split_lse) {
  static_assert(NQ <= 8, "at most 8 queries per KV head");
  using Reader = std::conditional_t<TABLE, TableLevelCodes<BITS>, EvenLevelCodes<BITS>>;
  constexpr int kDim = 128, kTiles = kDim / 16, kRowBytes = kDim * BITS / 8, kCodesAt = 4 * kDim, kSlots = 3;
  constexpr float kLog2e = 1.4426950408889634f;
  extern __shared__ __align__(16) uint8_t shared[];
  const int warps = blockDim.x >> 5, warp = threadIdx.x >> 5, lane = threadIdx.x & 31, group = lane >> 2, i = lane & 3;
  const uint8_t* table = shared;
  if (PRE_ROPE) fill_rope_table<Reader>(shared, p.inv_freq);
  __syncthreads();
  const int w = blockIdx.x * warps + warp;
  if (w >= p.splits * p.streams) return;
  const int stream = w / p.splits, split = w % p.splits;
  const bool outliers = p.per_vector > 0;
  const int page_bytes = kvquant_dense_page_bytes<BITS>(p.per_vector);
  uint8_t* slots = shared + (PRE_ROPE ? kKVQuantRopeTableBytes : 0) +
                   static_cast<size_t>(warp) * (kSlots * page_bytes + (outliers ? kKVQuantFixBytes : 0) +
                                                (TABLE ? kvquant_pair_tables_bytes<BITS>() : 0));
  // fix: [128][8] fixed-point sums, key outliers' score terms by token, then value outliers' output
  // terms by channel; aux: the turned queries [8][128], then the probabilities [128][8].
  int(*fix)[8] = reinterpret_cast<int(*)[8]>(slots + kSlots * page_bytes);
  float* aux = reinterpret_cast<float*>(slots + kSlots * page_bytes + kKVQuantFixBytes / 2);
  if (outliers)
    for (int k = lane; k < 128 * 8; k += 32) fix[k / 8][k % 8] = 0;

  const float* q_in = queries + (static_cast<size_t>(stream) * NQ + min(group, NQ - 1)) * kDim;
  // The query (`group`'s, zero past NQ) at the lane's 32 channels (partnered order: element e < 16
  // and e + 16 are a RoPE pair), loaded once: reloaded on every page, its loads' latency would sit
  // in each page's path.
  float query[32];
#pragma unroll
  for (int k = 0; k < 8; ++k) {
    const float4 v = group < NQ ? __ldg(reinterpret_cast<const float4*>(q_in + partnered_channel(i, 4 * k))) : float4{};
    query[4 * k] = v.x, query[4 * k + 1] = v.y, query[4 * k + 2] = v.z, query[4 * k + 3] = v.w;
  }
  // The largest norm of a query's channel pair (c, c + 64), which RoPE turns but keeps: a key
  // outlier's term is at most its delta times this.
  float query_bound = 0.f;
  if (outliers) {
    float largest = 0.f;
#pragma unroll
    for (int e = 0; e < 16; ++e) largest = fmaxf(largest, query[e] * query[e] + query[e + 16] * query[e + 16]);
    for (int o = 1; o < 32; o <<= 1) largest = fmaxf(largest, __shfl_xor_sync(0xffffffffu, largest, o));
    query_bound = sqrtf(largest) * (1.f + 1e-6f);
  }
  // level(code) = base + code * spacing where the levels are even; else the pairs' tables hold the
  // levels, and mid + half * level is lo + step * level with base 0 and spacing 1.
  const float* key_levels = p.key_levels[stream];
  const float* value_levels = p.value_levels[stream];
  const float key_base = TABLE ? 0.f : key_levels[0], key_spacing = TABLE ? 1.f : key_levels[1] - key_levels[0];
  const float value_base = TABLE ? 0.f : value_levels[0], value_spacing = TABLE ? 1.f : value_levels[1] - value_levels[0];
  const auto level = [&](const float* levels, float base, float spacing, int code) {
    return TABLE ? levels[code] : fmaf(static_cast<float>(code), spacing, base);
  };
  // A page's sparse outliers (after its codes) as fixed-point terms in fix, a round per entry of a
  // vector: the lane takes vectors lane + 32k and issues a round's loads together, and the round's
  // scale comes from its own largest |value - dense| times weight_bound (a bound on what multiplies
  // it), so that no pass over the entries comes first. term(vector, index, delta, scale) adds an
  // entry's terms; flush(1 / scale) moves the sums out and zeroes them.
  const auto gather_outliers = [&](const uint8_t* page, bool keys, const float* levels, float base, float spacing,
                                   float weight_bound, auto term, auto flush) {
    const uint8_t* entries = page + kCodesAt + kDim * kRowBytes;
    for (int o = 0; o < p.per_vector; ++o) {
      int index[4];
      float delta[4], largest = 0.f;
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const int v = lane + 32 * k, at = v * p.per_vector + o;
        const float2 r = __half22float2(reinterpret_cast<const __half2*>(page)[v]);  // (lo, hi)
        index[k] = outlier_index(entries, at);
        const int code = code_at<BITS>(page + kCodesAt, keys ? index[k] * kDim + v : v * kDim + index[k]);
        delta[k] = outlier_value(entries, at) - fmaf(0.5f * (r.y - r.x), level(levels, base, spacing, code), 0.5f * (r.y + r.x));
        largest = fmaxf(largest, fabsf(delta[k]));
      }
      const float2 fixed = fixed_point_scale(largest * weight_bound);
#pragma unroll
      for (int k = 0; k < 4; ++k) term(lane + 32 * k, index[k], delta[k], fixed.x);
      __syncwarp();
      flush(fixed.y);
      __syncwarp();
    }
  };
  const float score_scale = scale * kLog2e;  // softmax in base 2
  // 1-bit even levels are 2 apart: a code's step, hi - lo, could overflow fp16 where half the range
  // cannot, so the codes are doubled (exactly) and the steps halved.
  constexpr int kFold = !TABLE && BITS == 1 ? 2 : 1;
  auto fold = [](uint32_t pair) { return kFold == 2 ? as_u32(__hadd2(as_half2(pair), as_half2(pair))) : pair; };
  Reader reader;
  if constexpr (TABLE) {
    uint32_t* tables = reinterpret_cast<uint32_t*>(slots + kSlots * page_bytes + (outliers ? kKVQuantFixBytes : 0));
    Reader::fill(tables, key_levels, lane);
    Reader::fill(tables + Reader::kPairs, value_levels, lane);
    reader.key_table = tables, reader.value_table = tables + Reader::kPairs;
  }

  // B of the scores in fp16 from a query (channels as `query` holds them).
  auto scores_operand = [](const float (&q)[32], uint32_t (&b)[kTiles][2]) {
#pragma unroll
    for (int kt = 0; kt < kTiles; ++kt)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int2 e = Reader::elements(kt, h);
        b[kt][h] = as_u32(__floats2half2_rn(q[e.x], q[e.y]));
      }
  };
  uint32_t query_b[kTiles][2];  // keys after RoPE: the same B on every page
  if (!PRE_ROPE) scores_operand(query, query_b);

  // Online softmax of queries 2i and 2i + 1 (as INT's); acc: O^T fragments, channel rows
  // 16 group + paired_channel(f, 0) and (f, 1), by queries 2i, 2i + 1.
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {}, lo_term[2] = {}, acc[kTiles][4] = {};
  const int first = p.first_page + split * p.pages_per_split, last = min(first + p.pages_per_split, p.n_pages);
  const int halves = 2 * max(last - first, 0);
  auto fetch = [&](int x) {
    if (x < halves) {
      const size_t at = static_cast<size_t>(stream) * p.n_pages + first + x / 2;
      const uint8_t* src = (x & 1 ? p.value_pages : p.key_pages)[at];
      if (reinterpret_cast<uintptr_t>(src) & 15) __trap();  // cp.async takes 16-byte aligned pages
      uint8_t* dst = slots + (x % kSlots) * page_bytes;
      for (int c = lane; c < page_bytes / 16; c += 32) copy_async_16(dst + 16 * c, src + 16 * c, true);
    }
    copy_async_commit();
  };
#pragma unroll
  for (int x = 0; x < kSlots; ++x) fetch(x);
  for (int x = 0; x < halves; x += 2) {
    const int page = first + x / 2;
    copy_async_wait<kSlots - 1>();  // K(p) is in
    __syncwarp();
    const uint8_t* key_page = slots + (x % kSlots) * page_bytes;
    const uint8_t* value_page = slots + ((x + 1) % kSlots) * page_bytes;

    // The query turned back by the page's first position where PRE_ROPE (else as loaded), for B of
    // the scores and, with outliers, in aux.
    float q[32];
#pragma unroll
    for (int e = 0; e < 32; ++e) q[e] = query[e];
    if (PRE_ROPE) {
      // Lane (g, i) computes channels 16i + 2g and + 1; each lane gathers its 16.
      const float2 own0 = rope_cos_sin(page * kDim, p.inv_freq[16 * i + 2 * group]);
      const float2 own1 = rope_cos_sin(page * kDim, p.inv_freq[16 * i + 2 * group + 1]);
#pragma unroll
      for (int e = 0; e < 16; ++e) {
        const int from = (e >> 1) * 4 + i;
        const float c = __shfl_sync(0xffffffffu, e & 1 ? own1.x : own0.x, from);
        const float s = __shfl_sync(0xffffffffu, e & 1 ? own1.y : own0.y, from);
        const float x0 = q[e], x1 = q[e + 16];
        q[e] = fmaf(x0, c, x1 * s), q[e + 16] = fmaf(x1, c, -x0 * s);
      }
    }
    if (outliers && group < NQ)
#pragma unroll
      for (int e = 0; e < 32; ++e) aux[group * kDim + partnered_channel(i, e)] = q[e];
    uint32_t b[kTiles][2];
    if (PRE_ROPE) {
      scores_operand(q, b);
    } else {
#pragma unroll
      for (int kt = 0; kt < kTiles; ++kt) b[kt][0] = query_b[kt][0], b[kt][1] = query_b[kt][1];
    }
    // Each register's (lo, step) pair of channels in fp16, from the page's (lo, hi) per channel:
    // k = code * step + lo', code = pair - bias exactly, lo' = lo + (hi - lo) (1 + base) / 2 and
    // step = (hi - lo) spacing / 2 (the levels' first value and spacing).
    uint32_t key_lo[kTiles][2], key_step[kTiles][2];
    {
      const uint32_t* ranges = reinterpret_cast<const uint32_t*>(key_page);  // (lo, hi) fp16 per channel
      uint32_t range[32];
#pragma unroll
      for (int k = 0; k < 8; ++k) {
        const uint4 v = reinterpret_cast<const uint4*>(ranges)[(k < 4 ? 4 * i : 16 + 4 * i) + k % 4];
        range[4 * k] = v.x, range[4 * k + 1] = v.y, range[4 * k + 2] = v.z, range[4 * k + 3] = v.w;
      }
      const __half2 to_lo = __float2half2_rn(1.f + key_base), to_step = __float2half2_rn(key_spacing / kFold);
      const __half2 halve = __float2half2_rn(0.5f);
#pragma unroll
      for (int kt = 0; kt < kTiles; ++kt)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int2 e = Reader::elements(kt, h);
          const __half2 lo = as_half2(__byte_perm(range[e.x], range[e.y], 0x5410));
          // Half the width as hi / 2 - lo / 2: hi - lo itself overflows fp16 past 65504.
          const __half2 half_width = __hsub2(__hmul2(as_half2(__byte_perm(range[e.x], range[e.y], 0x7632)), halve), __hmul2(lo, halve));
          key_lo[kt][h] = as_u32(__hfma2(half_width, to_lo, lo));
          key_step[kt][h] = as_u32(__hmul2(half_width, to_step));
        }
    }
    auto key_pair = [&](const typename Reader::KeyRow& row, int kt, int h) {
      return __hfma2(as_half2(fold(as_u32(reader.key_pair(row, kt, h)))), as_half2(key_step[kt][h]), as_half2(key_lo[kt][h]));
    };
    float s[kTiles][4];
#pragma unroll
    for (int mt = 0; mt < kTiles; ++mt) {
      const int t0 = mt * 16 + group;
      typename Reader::KeyRow row0, row8;
      Reader::load_key_row(row0, key_page + kCodesAt + t0 * kRowBytes, i);
      Reader::load_key_row(row8, key_page + kCodesAt + (t0 + 8) * kRowBytes, i);
#pragma unroll
      for (int k = 0; k < 4; ++k) s[mt][k] = 0.f;
#pragma unroll
      for (int kt = 0; kt < kTiles / 2; ++kt) {
        uint4 turn0 = {}, turn8 = {};  // (cos, sin) of halves 0 and 1 at tokens t0 and t0 + 8
        if (PRE_ROPE) {
          turn0 = *reinterpret_cast<const uint4*>(table + rope_entry(t0, i, kt));
          turn8 = *reinterpret_cast<const uint4*>(table + rope_entry(t0 + 8, i, kt));
        }
        // A fragments of k-tiles kt (channels below 64) and kt + 4 (their partners): a[r] is row 0
        // or 8 (r & 1) of half r / 2.
        uint32_t lo_half[4], hi_half[4];
        auto turned = [&](const typename Reader::KeyRow& row, int h, uint32_t c, uint32_t sn, int r) {
          __half2 x = key_pair(row, kt, h), y = key_pair(row, kt + 4, h);
          if (PRE_ROPE) {
            const __half2 x2 = __hfma2(x, as_half2(c), __hneg2(__hmul2(y, as_half2(sn))));
            y = __hfma2(y, as_half2(c), __hmul2(x, as_half2(sn)));
            x = x2;
          }
          lo_half[r] = as_u32(x), hi_half[r] = as_u32(y);
        };
        turned(row0, 0, turn0.x, turn0.y, 0);
        turned(row8, 0, turn8.x, turn8.y, 1);
        turned(row0, 1, turn0.z, turn0.w, 2);
        turned(row8, 1, turn8.z, turn8.w, 3);
        mma_16816(s[mt], lo_half, b[kt][0], b[kt][1]);
        mma_16816(s[mt], hi_half, b[kt + 4][0], b[kt + 4][1]);
      }
    }
    if (outliers) {  // (value - dense) * (R(t)^T q')[c] for each key outlier (token t, channel c)
      __syncwarp();  // the turned queries are in aux
      gather_outliers(
          key_page, true, key_levels, key_base, key_spacing, query_bound,
          [&](int c, int t, float delta, float fixed) {
            const int partner = c ^ 64;
            const float sign = c < 64 ? 1.f : -1.f;
            float2 turn = {1.f, 0.f};
            if (PRE_ROPE) turn = rope_table_cos_sin<Reader>(table, t, c & 63);
#pragma unroll
            for (int q = 0; q < NQ; ++q)
              atomicAdd(&fix[t][q], __float2int_rn(fixed * (delta * fmaf(aux[q * kDim + c], turn.x, sign * turn.y * aux[q * kDim + partner]))));
          },
          [&](float inverse) {
#pragma unroll
            for (int mt = 0; mt < kTiles; ++mt)
#pragma unroll
              for (int k = 0; k < 4; ++k) {
                int& f = fix[mt * 16 + group + 8 * (k >> 1)][2 * i + (k & 1)];
                s[mt][k] += static_cast<float>(f) * inverse, f = 0;
              }
          });
    }
    __syncwarp();
    fetch(x + kSlots);              // into K(p)'s slot
    copy_async_wait<kSlots - 1>();  // V(p) is in
    __syncwarp();

    // Softmax over the page: queries 2i (s[.][0], s[.][2]) and 2i + 1 (s[.][1], s[.][3]).
    float page_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int mt = 0; mt < kTiles; ++mt)
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        s[mt][k] *= score_scale;
        page_max[k & 1] = fmaxf(page_max[k & 1], s[mt][k]);
      }
    float rescale[2];
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      for (int o = 4; o < 32; o <<= 1) page_max[j] = fmaxf(page_max[j], __shfl_xor_sync(0xffffffffu, page_max[j], o));
      const float new_m = fmaxf(m[j], page_max[j]);
      rescale[j] = fast_exp2(m[j] - new_m);  // 0 on the first page (m = -inf)
      m[j] = new_m;
      l[j] *= rescale[j], lo_term[j] *= rescale[j];
    }
    // B of the value products: p * step_t in fp16, from each k-tile's 16 tokens (rows `group`, +8)
    // by queries (2i, 2i + 1) to queries (`group`) by tokens (2i, 2i + 1), +8) with movmatrix; and the
    // sum of those products by query, which the codes' biases multiply.
    uint32_t pb[kTiles][2];
    float step_sum[2] = {};
#pragma unroll
    for (int mt = 0; mt < kTiles; ++mt)
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const int t = mt * 16 + group + 8 * r;
        const float2 range = __half22float2(reinterpret_cast<const __half2*>(value_page)[t]);
        const float mid = 0.5f * (range.y + range.x), half = 0.5f * (range.y - range.x);
        const float lo = fmaf(half, value_base, mid), step = half * value_spacing / kFold;
        float e[2];
#pragma unroll
        for (int j = 0; j < 2; ++j) {
          e[j] = fast_exp2(s[mt][2 * r + j] - m[j]);
          l[j] += e[j];
          lo_term[j] = fmaf(e[j], lo, lo_term[j]);
        }
        const __half2 ps = __floats2half2_rn(e[0] * step, e[1] * step);
        const float2 rounded = __half22float2(ps);
        step_sum[0] += rounded.x, step_sum[1] += rounded.y;
        pb[mt][r] = transpose_8x8(as_u32(ps));
        if (outliers) aux[t * 8 + 2 * i] = e[0], aux[t * 8 + 2 * i + 1] = e[1];
      }
    if constexpr (!TABLE)  // the codes' biases multiply it
#pragma unroll
      for (int j = 0; j < 2; ++j)
        for (int o = 4; o < 32; o <<= 1) step_sum[j] += __shfl_xor_sync(0xffffffffu, step_sum[j], o);
    // The accumulator rescaled, less the codes' biases times this page's sums (taken off before
    // the products, so that it never holds more than a page's share of them: INT's reason).
#pragma unroll
    for (int f = 0; f < kTiles; ++f)
#pragma unroll
      for (int k = 0; k < 4; ++k)
        acc[f][k] = TABLE ? acc[f][k] * rescale[k & 1] : fmaf(acc[f][k], rescale[k & 1], -Reader::value_bias(f, k >> 1) * kFold * step_sum[k & 1]);
    // O^T[c][q] += sum_t (code[t][c] + bias) * (p[q][t] * step_t): k-tile kt's tokens 16kt + 2i, +1
    // (pair v01) and + 8, + 9 (pair v89) of the lane's channels 16 group on.
#pragma unroll
    for (int kt = 0; kt < kTiles; ++kt) {
      const uint8_t* rows = value_page + kCodesAt + (kt * 16 + 2 * i) * kRowBytes;
      typename Reader::ValueRows v01, v89;
      Reader::load_value_rows(v01, rows, rows + kRowBytes, group);
      Reader::load_value_rows(v89, rows + 8 * kRowBytes, rows + 9 * kRowBytes, group);
#pragma unroll
      for (int f = 0; f < kTiles; ++f) {
        const uint32_t a[4] = {fold(reader.value_pair(v01, f, 0)), fold(reader.value_pair(v01, f, 1)),
                               fold(reader.value_pair(v89, f, 0)), fold(reader.value_pair(v89, f, 1))};
        mma_16816(acc[f], a, pb[kt][0], pb[kt][1]);
      }
    }
    if (outliers) {  // (value - dense) * p for each value outlier (token t, channel c)
      __syncwarp();  // the probabilities are in aux
      gather_outliers(
          value_page, false, value_levels, value_base, value_spacing, 1.f,  // probabilities are at most 1
          [&](int t, int c, float delta, float fixed) {
#pragma unroll
            for (int q = 0; q < NQ; ++q) atomicAdd(&fix[c][q], __float2int_rn(fixed * (delta * aux[t * 8 + q])));
          },
          [&](float inverse) {
#pragma unroll
            for (int f = 0; f < kTiles; ++f)
#pragma unroll
              for (int k = 0; k < 4; ++k) {
                int& x = fix[16 * group + Reader::paired_channel(f, k >> 1)][2 * i + (k & 1)];
                acc[f][k] += static_cast<float>(x) * inverse, x = 0;
              }
          });
    }
    __syncwarp();  // V(p) and the outlier arrays are read before they are overwritten
    fetch(x + kSlots + 1);  // into V(p)'s slot
  }
#pragma unroll
  for (int j = 0; j < 2; ++j)
    for (int o = 4; o < 32; o <<= 1) {
      l[j] += __shfl_xor_sync(0xffffffffu, l[j], o);
      lo_term[j] += __shfl_xor_sync(0xffffffffu, lo_term[j], o);
    }
  const size_t row = (static_cast<size_t>(split) * p.streams + stream) * NQ;
#pragma unroll
  for (int j = 0; j < 2; ++j) {
    const int query = 2 * i + j;
    if (query >= NQ) continue;
    float* out = split_out + (row + query) * kDim + 16 * group;
#pragma unroll
    for (int f = 0; f < kTiles; ++f)
#pragma unroll
      for (int r = 0; r < 2; ++r)
        out[Reader::paired_channel(f, r)] = l[j] > 0.f ? (acc[f][2 * r + j] + lo_term[j]) / l[j] : 0.f;
    if (group == 0) split_lse[row + query] = l[j] > 0.f ? (m[j] + log2f(l[j])) / kLog2e : -INFINITY;
  }
}

}  // namespace ringkv::kernels
