#pragma once
// Decode attention over INT-coded pages (the KIVI-style codec of kvstore/codec_int), reading the
// codes directly, flash-decoding style: each warp takes a run of pages of one stream (a layer and
// KV head of one sequence) with an online softmax; the runs' partial states merge afterwards.
// Both products run on tensor cores (mma.sync m16n8k16, fp16 in, fp32 accumulate) with the codes
// as exact fp16 integers:
//   scores  S[t][q] = q.lo + sum_c code[t][c] * (q[c] * step[c])  (one key (lo, step) per channel and page)
//   values  O[q][c] += sum_t (p[q][t] * step_t) * code[t][c] + sum_t p[q][t] * lo_t  (one (lo, step) per token)
// Key codes are row-major (a token's channels) and value codes channel-major (a channel's tokens),
// so both products reduce along a run of 128 packed codes. Lane i of a quad takes codes 32i to
// 32i + 31 of a run: BITS whole words, one shared-memory load, unpacked in registers (LaneCodes);
// the other operand follows the same order of the reduction dimension. Score tile mt takes its 16
// tokens in the order that the value product's k-tile mt reads them, so that its probabilities
// become that B fragment in registers (transpose_8x8).
// The CPU twin is partial_attention over IntCodec pages.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/copy_async.cuh"
#include "kernels/fast_exp2.cuh"
#include "kernels/lane_codes.cuh"
#include "kernels/mma.cuh"

namespace ringkv::kernels {

constexpr int kIntPageTokens = 128;  // tokens per page = head_dim: the length of a run of codes
constexpr int kIntMaxQueries = 8;    // query heads sharing a KV head (GQA group): the n of the score mma
constexpr int kIntWarpsPerBlock = 1;  // warps of decode_attention_int_kernel's blocks (each warp is a split)

struct IntPageParams {
  const uint8_t* const* key_pages;    // [streams][n_pages] device pointers to encoded pages
  const uint8_t* const* value_pages;  // [streams][n_pages]
  int n_pages;
  int pages_per_split;
};

// a[q] for a lane-dependent q without indexing the register array at run time (which would put
// it in local memory).
template <int N>
__device__ inline float select(const float (&a)[N], int q) {
  float r = 0.f;
#pragma unroll
  for (int k = 0; k < N; ++k) r = k == q ? a[k] : r;
  return r;
}

// Bytes of an encoded INT page (head_dim 128, 128 tokens, group 128): (lo, step) pairs then codes.
template <int BITS>
constexpr int int_page_bytes() {
  return 4 * kIntPageTokens + kIntPageTokens * kIntPageTokens * BITS / 8;
}

// Where key row t (128 codes of a token) sits in shared memory, in bytes from the first: the eight
// rows a score tile's quads read at once (tokens 32a + kHalf b + e of group 2a + b, see
// LaneCodes::code_of_row) would all start on the same banks, packed; moved apart by a few bytes
// (1 and 2 bits) or by swapping neighbours (4 bits), they read in as few wavefronts as their bytes
// allow. For each group's row_code, row_code + e sits at a constant e * row bytes from one of two
// places, by e's parity. 3-bit rows keep their places.
template <int BITS>
__host__ __device__ constexpr int int_key_row_at(int t) {
  constexpr int kRowBytes = 16 * BITS;
  if (BITS == 4) return (t ^ (t >> 2 & 1)) * kRowBytes;
  if (BITS == 3) return t * kRowBytes;
  return t * kRowBytes + (t >> 5) * 32 + (t / (16 / BITS) & 1) * (BITS == 1 ? 16 : 0);
}

// Bytes of a page-half slot: an encoded page with room for its key rows' moves.
template <int BITS>
constexpr int int_slot_bytes() {
  constexpr int kMoved = int_key_row_at<BITS>(127) - 127 * 16 * BITS;  // the last row moves the furthest, if any do
  return int_page_bytes<BITS>() + (kMoved > 0 ? kMoved : 0);
}

// Shared memory of one warp of decode_attention_int_kernel holding `slots` page halves (a page's
// keys or its values).
template <int BITS>
constexpr int int_warp_shared_bytes(int slots) {
  return slots * int_slot_bytes<BITS>();
}

// Warps of decode_attention_int_kernel that fit a multiprocessor of sm_90 (228 KiB of shared
// memory, 1 KiB of it reserved per block), at most 12: three per scheduler leave 168 registers a
// thread, and four (128) measured slower.
template <int BITS>
constexpr int int_warps_fitting(int slots) {
  constexpr int kShared = 228 * 1024, kReservedPerBlock = 1024;
  const int fit = kShared / (kIntWarpsPerBlock * int_warp_shared_bytes<BITS>(slots) + kReservedPerBlock) * kIntWarpsPerBlock;
  return fit < 12 ? fit : 12;
}

// Page-half slots of a warp: four (the next page's keys and values in flight) where they leave
// as many warps per multiprocessor as three (the next keys only) do, else three.
template <int BITS>
constexpr int int_slots() {
  return int_warps_fitting<BITS>(4) == int_warps_fitting<BITS>(3) ? 4 : 3;
}
template <int BITS>
constexpr int int_warp_shared_bytes() {
  return int_warp_shared_bytes<BITS>(int_slots<BITS>());
}
template <int BITS>
constexpr int int_warps_per_multiprocessor() {
  return int_warps_fitting<BITS>(int_slots<BITS>());
}

// grid: (ceil(splits / warps), streams); block: warps x 32 threads; dynamic shared memory:
// warps * int_warp_shared_bytes<BITS>(). Each warp is one split: it runs over its pages alone (no
// block-wide barriers), copying page halves into S = int_slots<BITS>() slots of shared memory
// (cp.async) in the order K0 V0 K1 V1 ...: while it computes on K(p) and V(p), the next S - 2
// halves are on their way, and a slot is refilled as soon as its half is done. It keeps its own
// online softmax. queries: [streams][NQ][128]; split_out: [splits][streams][NQ][128], split_lse:
// [splits][streams][NQ].
//   scores: A = the key codes (m: 16 tokens, k: 16 channels), B = q * step (n: 8 queries, those past
//           NQ zero), so lane (group, i) holds tokens code_of_row(mt, group) (and of group + 8)
//           for queries 2i, 2i + 1;
//   values: A = the value codes channel-major (m: 16 channels, k: 16 tokens), B = the probabilities
//           times each token's step (n: 8 queries), score fragments transposed.
template <int BITS, int NQ>
__global__ void __launch_bounds__(32 * kIntWarpsPerBlock, int_warps_per_multiprocessor<BITS>() / kIntWarpsPerBlock)
    decode_attention_int_kernel(IntPageParams pages, int splits, const float* __restrict__ queries, float scale,
                                float* __restrict__ split_out, float* __restrict__ split_lse) {
  static_assert(NQ <= kIntMaxQueries, "at most 8 queries per KV head");
  using Codes = LaneCodes<BITS>;
  constexpr int kDim = kIntPageTokens, kTiles = kDim / 16, kRowBytes = kDim * BITS / 8, kParamBytes = 4 * kDim;
  constexpr int kPageBytes = int_page_bytes<BITS>(), kSlotBytes = int_slot_bytes<BITS>();
  constexpr float kLog2e = 1.4426950408889634f;
  static_assert(kPageBytes % 16 == 0, "pages copy in 16-byte chunks");
  extern __shared__ __align__(16) uint8_t shared[];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, group = lane >> 2, i = lane & 3;
  const int split = blockIdx.x * (blockDim.x >> 5) + warp, stream = blockIdx.y, streams = gridDim.y;
  if (split >= splits) return;
  uint8_t* slots = shared + static_cast<size_t>(warp) * int_warp_shared_bytes<BITS>();
  constexpr int kSlots = int_slots<BITS>();

  // This lane's query (`group`, zero past NQ) at its 32 channels, 32i on.
  const float4* q_in =
      reinterpret_cast<const float4*>(queries + (static_cast<size_t>(stream) * NQ + min(group, NQ - 1)) * kDim + 32 * i);
  float q[32];
#pragma unroll
  for (int k = 0; k < 8; ++k) {
    const float4 v = group < NQ ? __ldg(q_in + k) : float4{};
    q[4 * k] = v.x, q[4 * k + 1] = v.y, q[4 * k + 2] = v.z, q[4 * k + 3] = v.w;
  }
  const float score_scale = scale * kLog2e;  // softmax in base 2
  // Score tile mt's rows `group` and + 8 are tokens code_of_row(mt, group (+ 8)) = row_code +
  // elements(mt, 0 (1)).x: constant offsets from one register; their key rows, from one of two.
  const int row_code = Codes::code_of_row(0, group);
  const int key_row_even = kParamBytes + int_key_row_at<BITS>(row_code);
  const int key_row_odd = kParamBytes + int_key_row_at<BITS>(row_code + 1) - kRowBytes;
  auto key_row = [&](const uint8_t* page, int e) { return page + (e % 2 ? key_row_odd : key_row_even) + e * kRowBytes; };
  const typename Codes::Exponents exponents;

  // Online softmax of queries 2i and 2i + 1 (m in base 2, shared by the warp; l and lo_term: this
  // lane's tokens only, summed over the lanes at the end); acc: O^T fragments, channel 16mt + group
  // (+ 8) by queries 2i, 2i + 1.
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {}, lo_term[2] = {}, acc[kTiles][4] = {};
  const int first = split * pages.pages_per_split, last = min(first + pages.pages_per_split, pages.n_pages);
  const int halves = 2 * (last - first);
  // Half x (page first + x / 2, its keys for even x) into slot x % S; one commit group per half,
  // empty past the end, so that the count of groups in flight is the same on every page.
  auto fetch = [&](int x) {
    if (x < halves) {
      const size_t at = static_cast<size_t>(stream) * pages.n_pages + first + x / 2;
      const uint8_t* src = (x & 1 ? pages.value_pages : pages.key_pages)[at];
      uint8_t* dst = slots + (x % kSlots) * kSlotBytes;
#pragma unroll 4
      for (int c = lane; c < kPageBytes / 16; c += 32) {
        const int code_byte = 16 * c - kParamBytes, row = code_byte / kRowBytes;  // key rows move
        const int at = x & 1 || code_byte < 0 ? 16 * c : kParamBytes + int_key_row_at<BITS>(row) + code_byte % kRowBytes;
        copy_async_16(dst + at, src + 16 * c, true);
      }
    }
    copy_async_commit();
  };
#pragma unroll
  for (int x = 0; x < kSlots; ++x) fetch(x);
  for (int x = 0; x < halves; x += 2) {
    copy_async_wait<kSlots - 1>();  // K(p) is in; the halves after it may still be on their way
    __syncwarp();
    const uint8_t* key_page = slots + (x % kSlots) * kSlotBytes;
    const uint8_t* value_page = slots + ((x + 1) % kSlots) * kSlotBytes;
    const __half2* value_params = reinterpret_cast<const __half2*>(value_page);  // (lo, step) per token

    // B of the scores (q * step in fp16, channels in LaneCodes order) and this lane's share of q . lo.
    uint32_t b[kTiles][2];
    float base = 0.f;
    {
      float lo[32], step[32];
      const uint4* params = reinterpret_cast<const uint4*>(key_page) + 8 * i;  // (lo, step) of channels 32i on
#pragma unroll
      for (int k = 0; k < 8; ++k) {
        const uint4 v = params[k];
        const uint32_t u[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const float2 f = __half22float2(as_half2(u[j]));
          lo[4 * k + j] = f.x, step[4 * k + j] = f.y;
        }
      }
#pragma unroll
      for (int c = 0; c < 32; ++c) base = fmaf(q[c], lo[c], base);
#pragma unroll
      for (int kt = 0; kt < kTiles; ++kt)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int2 e = Codes::elements(kt, h);
          const __half2 qs = __floats2half2_rn(q[e.x] * step[e.x], q[e.y] * step[e.y]);
          b[kt][h] = as_u32(qs);
        }
    }
    base += __shfl_xor_sync(0xffffffffu, base, 1);
    base += __shfl_xor_sync(0xffffffffu, base, 2);  // query `group`'s; lanes 8j hold query 2j's
    const float base_a = __shfl_sync(0xffffffffu, base, 8 * i) * score_scale;
    const float base_b = __shfl_sync(0xffffffffu, base, 8 * i + 4) * score_scale;

    float unbias[4] = {};  // -sum(bias * q * step) of queries 2i, 2i + 1 (as s[.] holds them), every row alike
#pragma unroll
    for (int kt = 0; kt < kTiles; ++kt) {
      uint32_t a[4];
      Codes::negative_biases(kt, a);
      mma_16816(unbias, a, b[kt][0], b[kt][1]);
    }
    float s[kTiles][4];
#pragma unroll
    for (int mt = 0; mt < kTiles; ++mt) {
      Codes row0, row8;
      row0.load(key_row(key_page, Codes::elements(mt, 0).x), i);
      row8.load(key_row(key_page, Codes::elements(mt, 1).x), i);
#pragma unroll
      for (int k = 0; k < 4; ++k) s[mt][k] = unbias[k];
#pragma unroll
      for (int kt = 0; kt < kTiles; ++kt) {
        const uint32_t a[4] = {row0.pair(kt, 0, exponents), row8.pair(kt, 0, exponents), row0.pair(kt, 1, exponents),
                              row8.pair(kt, 1, exponents)};
        mma_16816(s[mt], a, b[kt][0], b[kt][1]);
      }
    }
    __syncwarp();
    fetch(x + kSlots);              // into K(p)'s slot
    copy_async_wait<kSlots - 1>();  // V(p) is in
    __syncwarp();
    // Softmax over the page: queries 2i (s[.][0], s[.][2]) and 2i + 1 (s[.][1], s[.][3]).
    float page_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int mt = 0; mt < kTiles; ++mt) {
      s[mt][0] = fmaf(s[mt][0], score_scale, base_a), s[mt][2] = fmaf(s[mt][2], score_scale, base_a);
      s[mt][1] = fmaf(s[mt][1], score_scale, base_b), s[mt][3] = fmaf(s[mt][3], score_scale, base_b);
      page_max[0] = fmaxf(page_max[0], fmaxf(s[mt][0], s[mt][2]));
      page_max[1] = fmaxf(page_max[1], fmaxf(s[mt][1], s[mt][3]));
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
    // B of the value products: p * step_t in fp16, each score tile's rows `group`, + 8 by queries
    // (2i, 2i + 1) turned into queries (`group`) by slots (2i, 2i + 1), + 8.
    uint32_t pb[kTiles][2];
#pragma unroll
    for (int mt = 0; mt < kTiles; ++mt)
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const float2 lo_step = __half22float2(value_params[row_code + Codes::elements(mt, r).x]);
        float e[2];
#pragma unroll
        for (int j = 0; j < 2; ++j) {
          e[j] = fast_exp2(s[mt][2 * r + j] - m[j]);
          l[j] += e[j];
          lo_term[j] = fmaf(e[j], lo_step.x, lo_term[j]);
        }
        pb[mt][r] = transpose_8x8(as_u32(__floats2half2_rn(e[0] * lo_step.y, e[1] * lo_step.y)));
      }
    // O^T[c][q] += sum_t code[t][c] * (p[q][t] * step_t).
    // The codes' biases add sum(bias * p * step) to every channel of a query: taken off the
    // accumulator before the products rather than after, so that it never holds more than a
    // page's share of them (the tensor cores' fp32 sums truncate, and a bias summed over every
    // page would bias the result).
    float unbias_values[4] = {};  // -sum(bias * p * step) of queries 2i, 2i + 1, every channel alike
#pragma unroll
    for (int kt = 0; kt < kTiles; ++kt) {
      uint32_t a[4];
      Codes::negative_biases(kt, a);
      mma_16816(unbias_values, a, pb[kt][0], pb[kt][1]);
    }
#pragma unroll
    for (int mt = 0; mt < kTiles; ++mt)
#pragma unroll
      for (int k = 0; k < 4; ++k) acc[mt][k] = fmaf(acc[mt][k], rescale[k & 1], unbias_values[k]);
#pragma unroll
    for (int mt = 0; mt < kTiles; ++mt) {
      Codes run0, run8;  // channel-major codes: channels 16mt + group and + 8
      run0.load(value_page + kParamBytes + (mt * 16 + group) * kRowBytes, i);
      run8.load(value_page + kParamBytes + (mt * 16 + group + 8) * kRowBytes, i);
#pragma unroll
      for (int kt = 0; kt < kTiles; ++kt) {
        const uint32_t a[4] = {run0.pair(kt, 0, exponents), run8.pair(kt, 0, exponents), run0.pair(kt, 1, exponents),
                              run8.pair(kt, 1, exponents)};
        mma_16816(acc[mt], a, pb[kt][0], pb[kt][1]);
      }
    }
    __syncwarp();  // V(p) is read before it is overwritten
    fetch(x + kSlots + 1);  // into V(p)'s slot
  }
#pragma unroll
  for (int j = 0; j < 2; ++j)
    for (int o = 4; o < 32; o <<= 1) {
      l[j] += __shfl_xor_sync(0xffffffffu, l[j], o);
      lo_term[j] += __shfl_xor_sync(0xffffffffu, lo_term[j], o);
    }
  const size_t row = (static_cast<size_t>(split) * streams + stream) * NQ;
#pragma unroll
  for (int j = 0; j < 2; ++j) {
    const int query = 2 * i + j;
    if (query >= NQ) continue;
    float* out = split_out + (row + query) * kDim;
#pragma unroll
    for (int mt = 0; mt < kTiles; ++mt)
#pragma unroll
      for (int r = 0; r < 2; ++r) out[mt * 16 + group + 8 * r] = l[j] > 0.f ? (acc[mt][2 * r + j] + lo_term[j]) / l[j] : 0.f;
    if (group == 0) split_lse[row + query] = l[j] > 0.f ? (m[j] + log2f(l[j])) / kLog2e : -INFINITY;
  }
}

}  // namespace ringkv::kernels
