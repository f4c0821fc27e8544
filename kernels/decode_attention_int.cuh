#pragma once
// Decode attention over INT-coded pages (the KIVI-style codec of kvstore/codec_int), reading the
// codes directly, flash-decoding style: each block takes a run of pages of one stream (a layer and
// KV head of one sequence) with an online softmax; the runs' partial states merge afterwards.
// Both products run on tensor cores (mma.sync m16n8k16, fp16 in, fp32 accumulate) with the codes
// as exact fp16 integers. The reduction dimension (channels for the scores, tokens for the values)
// is taken in "pair order": a 32-bit word of packed codes holds pairs 16 bits apart, which one
// shift and mask turn into an fp16 pair; the other operand is stored in the same order
// (PairLayout). Key codes are row-major and value codes channel-major in the page, so those words
// run along channels and along tokens respectively.
//   scores  S[t][q] = q.lo + sum_c code[t][c] * (q[c] * step[c])  (one key (lo, step) per channel and page)
//   values  O[q][c] += sum_t (p[q][t] * step_t) * code[t][c] + sum_t p[q][t] * lo_t  (one (lo, step) per token)
// The CPU twin is partial_attention over IntCodec pages.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace ringkv::kernels {

constexpr int kIntPageTokens = 128;  // tokens per page; also the threads of a block (4 warps)
constexpr int kIntMaxQueries = 8;    // query heads sharing a KV head (GQA group): the n of the score mma

struct IntPageParams {
  const uint8_t* const* key_pages;    // [streams][n_pages] device pointers to encoded pages
  const uint8_t* const* value_pages;  // [streams][n_pages]
  int n_pages;
  int pages_per_split;
};

// Two codes -> an fp16 pair of their integer values (exact): the codes go
// into the mantissa of 1024.0, and 1024 is subtracted.
template <int BITS>
__device__ inline uint32_t codes_to_half2(uint32_t lo_code, uint32_t hi_code) {
  const uint32_t u = 0x64006400u | lo_code | (hi_code << 16);
  __half2 h = *reinterpret_cast<const __half2*>(&u);
  h = __hsub2(h, __half2half2(__ushort_as_half(0x6400)));
  return *reinterpret_cast<const uint32_t*>(&h);
}

// a[q] for a lane-dependent q without indexing the register array at run time (which would put
// it in local memory).
template <int N>
__device__ inline float select(const float (&a)[N], int q) {
  float r = 0.f;
#pragma unroll
  for (int k = 0; k < N; ++k) r = k == q ? a[k] : r;
  return r;
}

__device__ inline void mma_16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// The code of element `index` of a packed array (LSB-first, as kernels/bit_packing.hpp writes).
template <int BITS>
__device__ inline uint32_t code_at(const uint8_t* packed, int index) {
  const int bit = index * BITS, byte = bit >> 3, sh = bit & 7;
  const uint32_t word = packed[byte] | (static_cast<uint32_t>(packed[byte + 1]) << 8);
  return (word >> sh) & ((1u << BITS) - 1u);
}

// The order in which a run of 128 codes (4-byte aligned) feeds an mma's reduction dimension: pair g
// is the two elements one register holds. Where codes tile a 32-bit word (1, 2, 4 bits), pair g of
// word w is elements (w*P + i, w*P + i + P/2), 16 bits apart; otherwise (3 bits) elements (2g, 2g+1).
template <int BITS>
struct PairLayout {
  static constexpr bool kWordPairs = 32 % BITS == 0;
  static constexpr int kPerWord = kWordPairs ? 32 / BITS : 2, kHalf = kPerWord / 2;
  static constexpr uint32_t kMask = (1u << BITS) - 1u;
  // Position of element e in pair order (2g, or 2g + 1 for the second of pair g).
  __device__ static int slot(int e) {
    if constexpr (kWordPairs) {
      const int w = e / kPerWord, r = e % kPerWord;
      return r < kHalf ? 2 * (w * kHalf + r) : 2 * (w * kHalf + r - kHalf) + 1;
    } else {
      return e;
    }
  }
  // Pair g of the run as an fp16 pair.
  __device__ static uint32_t pair(const uint8_t* run, int g) {
    if constexpr (kWordPairs) {
      const uint32_t word = reinterpret_cast<const uint32_t*>(run)[g / kHalf];
      __half2 h;
      const uint32_t u = 0x64006400u | ((word >> ((g % kHalf) * BITS)) & (kMask | (kMask << 16)));
      h = __hsub2(*reinterpret_cast<const __half2*>(&u), __half2half2(__ushort_as_half(0x6400)));
      return *reinterpret_cast<const uint32_t*>(&h);
    } else {
      return codes_to_half2<BITS>(code_at<BITS>(run, 2 * g), code_at<BITS>(run, 2 * g + 1));
    }
  }
};

// grid: (splits, streams); block: kIntPageTokens threads. queries: [streams][NQ][HEAD_DIM];
// split_out: [splits][streams][NQ][HEAD_DIM], split_lse: [splits][streams][NQ].
template <int BITS, int HEAD_DIM, int NQ>
__global__ void __launch_bounds__(kIntPageTokens) decode_attention_int_kernel(IntPageParams pages,
                                                                             const float* __restrict__ queries, float scale,
                                                                             float* __restrict__ split_out,
                                                                             float* __restrict__ split_lse) {
  static_assert(HEAD_DIM == kIntPageTokens, "one thread per channel and per token: head_dim equals the page size");
  static_assert(NQ <= kIntMaxQueries, "at most 8 queries per KV head");
  constexpr int kRowBytes = HEAD_DIM * BITS / 8;  // packed codes of one token
  constexpr int kParamBytes = 4 * HEAD_DIM;       // fp16 (lo, step) per channel (keys) or per token (values)
  constexpr int kCodeBytes = kIntPageTokens * kRowBytes;
  constexpr int kPad = 8;                         // halves of padding per row: spreads shared-memory banks
  __shared__ float q_s[NQ][HEAD_DIM];
  using Layout = PairLayout<BITS>;
  __shared__ __align__(16) __half qstep_s[kIntMaxQueries][HEAD_DIM + kPad];        // score mma B: [query][channel slot]
  __shared__ __align__(16) __half pstep_s[kIntMaxQueries][kIntPageTokens + kPad];  // value mma A: [query][token slot]
  __shared__ __align__(16) uint8_t kcodes_s[kCodeBytes + 4];
  __shared__ __align__(16) uint8_t vcodes_s[kCodeBytes + 4];
  __shared__ float vlo_s[kIntPageTokens], vstep_s[kIntPageTokens];
  __shared__ float base_part[4][kIntMaxQueries], max_part[4][kIntMaxQueries], sum_part[4][kIntMaxQueries],
      lo_part[4][kIntMaxQueries];

  const int split = blockIdx.x, stream = blockIdx.y, streams = gridDim.y, tid = threadIdx.x;
  const int lane = tid & 31, warp = tid >> 5, group = lane >> 2, pair = (lane & 3) * 2;
  const float* q_in = queries + static_cast<size_t>(stream) * NQ * HEAD_DIM;
  for (int i = tid; i < NQ * HEAD_DIM; i += blockDim.x) q_s[i / HEAD_DIM][i % HEAD_DIM] = q_in[i];
  for (int i = tid; i < kIntMaxQueries * (HEAD_DIM + kPad); i += blockDim.x) {
    qstep_s[i / (HEAD_DIM + kPad)][i % (HEAD_DIM + kPad)] = __float2half(0.f);
    pstep_s[i / (HEAD_DIM + kPad)][i % (HEAD_DIM + kPad)] = __float2half(0.f);
  }

  // Running softmax state, replicated in every thread: m, l and the lo term per query.
  float m[kIntMaxQueries], l[kIntMaxQueries], lo_term[kIntMaxQueries];
#pragma unroll
  for (int q = 0; q < kIntMaxQueries; ++q) m[q] = -INFINITY, l[q] = 0.f, lo_term[q] = 0.f;
  // Value accumulators: warp w owns channels [32w, 32w + 32) as 4 n-tiles of the value mma; this
  // lane holds rows `group` (a query) and `group + 8` (padding) of each tile's fp32 fragment.
  float acc[4][4] = {};

  // The next page is fetched into registers while the current one is computed: each thread holds
  // one channel's key (lo, step), one token's value (lo, step) and kChunks 16-byte chunks of each
  // page's codes.
  constexpr int kChunks = kCodeBytes / 16 / kIntPageTokens;
  static_assert(kChunks * 16 * kIntPageTokens == kCodeBytes, "codes split evenly over the threads");
  struct Fetched {
    __half2 key_param, value_param;  // (lo, step)
    uint4 key_codes[kChunks], value_codes[kChunks];
  } next;
  auto fetch = [&](int p) {
    const uint8_t* kp = pages.key_pages[static_cast<size_t>(stream) * pages.n_pages + p];
    const uint8_t* vp = pages.value_pages[static_cast<size_t>(stream) * pages.n_pages + p];
    next.key_param = reinterpret_cast<const __half2*>(kp)[tid];
    next.value_param = reinterpret_cast<const __half2*>(vp)[tid];
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      next.key_codes[i] = reinterpret_cast<const uint4*>(kp + kParamBytes)[tid + i * kIntPageTokens];
      next.value_codes[i] = reinterpret_cast<const uint4*>(vp + kParamBytes)[tid + i * kIntPageTokens];
    }
  };
  const int first = split * pages.pages_per_split;
  const int last = min(first + pages.pages_per_split, pages.n_pages);
  if (first < last) fetch(first);
  for (int p = first; p < last; ++p) {
    __syncthreads();  // the previous page's shared data is no longer read
    {  // thread tid as channel tid: the key terms; thread tid as token tid: its value (lo, step)
      const float klo = __low2float(next.key_param), kstep = __high2float(next.key_param);
#pragma unroll
      for (int q = 0; q < NQ; ++q) {
        qstep_s[q][Layout::slot(tid)] = __float2half(q_s[q][tid] * kstep);
        float b = q_s[q][tid] * klo;
        for (int o = 16; o > 0; o >>= 1) b += __shfl_xor_sync(0xffffffffu, b, o);
        if (lane == 0) base_part[warp][q] = b;
      }
      vlo_s[tid] = __low2float(next.value_param);
      vstep_s[tid] = __high2float(next.value_param);
#pragma unroll
      for (int i = 0; i < kChunks; ++i) {
        reinterpret_cast<uint4*>(kcodes_s)[tid + i * kIntPageTokens] = next.key_codes[i];
        reinterpret_cast<uint4*>(vcodes_s)[tid + i * kIntPageTokens] = next.value_codes[i];
      }
    }
    if (p + 1 < last) fetch(p + 1);
    __syncthreads();

    // Scores of this warp's 32 tokens (two m-tiles of 16) against the queries (n = 8).
    float s[2][4] = {};
#pragma unroll
    for (int mt = 0; mt < 2; ++mt) {
      const int t0 = warp * 32 + mt * 16 + group;
#pragma unroll
      for (int kt = 0; kt < HEAD_DIM / 16; ++kt) {
        const int g = kt * 8 + (lane & 3);  // this lane's pairs: g (k = 2j, 2j+1) and g + 4 (k = 2j+8, 2j+9)
        const uint8_t* row0 = kcodes_s + t0 * kRowBytes;
        const uint8_t* row8 = kcodes_s + (t0 + 8) * kRowBytes;
        const uint32_t a[4] = {Layout::pair(row0, g), Layout::pair(row8, g), Layout::pair(row0, g + 4),
                               Layout::pair(row8, g + 4)};
        const uint32_t b0 = *reinterpret_cast<const uint32_t*>(&qstep_s[group][2 * g]);
        const uint32_t b1 = *reinterpret_cast<const uint32_t*>(&qstep_s[group][2 * (g + 4)]);
        mma_16816(s[mt], a, b0, b1);
      }
    }
    // s[mt][0..1]: token t0, queries pair, pair + 1; s[mt][2..3]: token t0 + 8.
    float base[2], page_max[2];
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const int q = pair + j;
      base[j] = 0.f;
      for (int w = 0; w < 4; ++w) base[j] += q < NQ ? base_part[w][q] : 0.f;
      float mx = -INFINITY;
#pragma unroll
      for (int mt = 0; mt < 2; ++mt) {
        s[mt][j] = (s[mt][j] + base[j]) * scale;
        s[mt][j + 2] = (s[mt][j + 2] + base[j]) * scale;
        mx = fmaxf(mx, fmaxf(s[mt][j], s[mt][j + 2]));
      }
      for (int o = 4; o < 32; o <<= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
      page_max[j] = mx;
    }
    if (group == 0)
      for (int j = 0; j < 2; ++j) max_part[warp][pair + j] = page_max[j];
    __syncthreads();
    float new_m[kIntMaxQueries];
#pragma unroll
    for (int q = 0; q < kIntMaxQueries; ++q)
      new_m[q] = fmaxf(m[q], fmaxf(fmaxf(max_part[0][q], max_part[1][q]), fmaxf(max_part[2][q], max_part[3][q])));
    // Probabilities (unnormalized) of this lane's tokens; p * step into shared memory for the value mma.
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const int q = pair + j;
      const float q_max = select(new_m, q);
      float sum = 0.f, lo = 0.f;
#pragma unroll
      for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          const int t = warp * 32 + mt * 16 + group + 8 * r;
          const float e = q < NQ ? __expf(s[mt][j + 2 * r] - q_max) : 0.f;
          sum += e;
          lo += e * vlo_s[t];
          pstep_s[q][Layout::slot(t)] = __float2half(e * vstep_s[t]);
        }
      for (int o = 4; o < 32; o <<= 1) {
        sum += __shfl_xor_sync(0xffffffffu, sum, o);
        lo += __shfl_xor_sync(0xffffffffu, lo, o);
      }
      if (group == 0) sum_part[warp][q] = sum, lo_part[warp][q] = lo;
    }
    __syncthreads();
#pragma unroll
    for (int q = 0; q < kIntMaxQueries; ++q) {
      const float rescale = __expf(m[q] - new_m[q]);  // 0 on the first page (m = -inf)
      l[q] = l[q] * rescale + sum_part[0][q] + sum_part[1][q] + sum_part[2][q] + sum_part[3][q];
      lo_term[q] = lo_term[q] * rescale + lo_part[0][q] + lo_part[1][q] + lo_part[2][q] + lo_part[3][q];
      m[q] = new_m[q];
      if (q == group)
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) acc[nt][0] *= rescale, acc[nt][1] *= rescale;
    }
    // Values: O[q][c] += sum_t pstep[q][t] * code[t][c]; this warp's 32 channels, all 128 tokens.
#pragma unroll
    for (int kt = 0; kt < kIntPageTokens / 16; ++kt) {
      const int g = kt * 8 + (lane & 3);
      const uint32_t a[4] = {*reinterpret_cast<const uint32_t*>(&pstep_s[group][2 * g]), 0u,  // rows 8..15: no queries
                             *reinterpret_cast<const uint32_t*>(&pstep_s[group][2 * (g + 4)]), 0u};
#pragma unroll
      for (int nt = 0; nt < 4; ++nt) {
        const uint8_t* run = vcodes_s + (warp * 32 + nt * 8 + group) * kRowBytes;  // channel-major codes
        mma_16816(acc[nt], a, Layout::pair(run, g), Layout::pair(run, g + 4));
      }
    }
  }
  // acc[nt][0..1]: query `group`, channels warp*32 + nt*8 + pair + {0, 1}.
  const size_t row = (static_cast<size_t>(split) * streams + stream) * NQ;
  if (group < NQ) {
    const float my_l = select(l, group), my_lo = select(lo_term, group);
#pragma unroll
    for (int nt = 0; nt < 4; ++nt)
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int c = warp * 32 + nt * 8 + pair + j;
        split_out[(row + group) * HEAD_DIM + c] = my_l > 0.f ? (acc[nt][j] + my_lo) / my_l : 0.f;
      }
  }

#pragma unroll
  for (int q = 0; q < NQ; ++q)
    if (tid == q) split_lse[row + q] = l[q] > 0.f ? m[q] + logf(l[q]) : -INFINITY;
}

}  // namespace ringkv::kernels
