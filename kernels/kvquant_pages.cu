// Encoding and decoding of KVQuant pages on the GPU (layout: kernels/kvquant_pages.cuh).
#include <climits>
#include <type_traits>
#include <utility>

#include "kernels/copy_async.cuh"
#include "kernels/kvquant_pages.cuh"
#include "kernels/tiled_pages.cuh"

namespace ringkv {

namespace kernels {

// The level of n = (x - mid) / half (clamped to [-1, 1]): the count of thresholds (midpoints of the
// levels) at or below it. n comes from a product with 1 / half (relative error below 2^-22); only
// where that lands within 1e-5 of a threshold next to it, where the exact quotient could fall on
// the other side, is the division done.
template <int LEVELS>
__device__ uint32_t kvquant_code(float x, float mid, float half, float inv_half, const float* thresholds) {
  auto level = [&](float n) {
    const float clamped = fminf(fmaxf(n, -1.f), 1.f);
    uint32_t code = 0;
#pragma unroll
    for (int i = 0; i < LEVELS - 1; ++i) code += thresholds[i] <= clamped;
    return std::pair{code, clamped};
  };
  if (!(half > 0.f)) return level(0.f).first;  // a range of no width normalizes to 0, as on the CPU
  const float d = __fsub_rn(x, mid);
  const auto [code, clamped] = level(__fmul_rn(d, inv_half));
  const bool near_below = code > 0 && __fsub_rn(clamped, thresholds[code - 1]) <= 1e-5f;
  const bool near_above = code + 1 < LEVELS && __fsub_rn(thresholds[code], clamped) <= 1e-5f;
  return near_below || near_above ? level(__fdiv_rn(d, half)).first : code;
}

// The code kvquant_code gives a clamped normalized value c from the product (the count of the sorted
// thresholds at or below c), at 1 and 2 bits, by a binary search without branches: the thresholds
// left, halved by selects on each decision. `near` is set where c lies within 1e-5 of a threshold it
// was compared with, and so wherever it does of one next to it (both are compared): where
// kvquant_code divides.
template <int BITS>
__device__ __forceinline__ uint32_t search_code(float c, const float (&thresholds)[(1 << BITS) - 1], bool& near) {
  constexpr int kCount = (1 << BITS) - 1;
  float left[kCount];  // the first (1 << (BITS - level)) - 1 are the level's
#pragma unroll
  for (int i = 0; i < kCount; ++i) left[i] = thresholds[i];
  uint32_t code = 0;
#pragma unroll
  for (int level = 0; level < BITS; ++level) {
    const int middle = (1 << (BITS - level - 1)) - 1;
    const bool up = left[middle] <= c;
    near |= fabsf(__fsub_rn(c, left[middle])) <= 1e-5f;
    code = 2 * code + up;
#pragma unroll
    for (int i = 0; i < kCount; ++i)  // a bound fixed for every level: the loops unroll in full
      if (i < middle) left[i] = up ? left[middle + 1 + i] : left[i];
  }
  return code;
}

// Normalized values fall in kCodeBins even bins over [-1, 1]; a bin's entry names the first threshold
// that could lie in it (the count of those below its left edge less a margin) in its low 5 bits, and
// has bit 7 set where more than two could (the bin is then coded by kvquant_code). The margin (1e-4)
// is far wider than the rounding of a value's bin and covers the 1e-5 of a near value.
constexpr int kCodeBins = 256;
constexpr float kBinMargin = 1e-4f;

// Entry b of the bins for `count` sorted thresholds.
__device__ uint8_t code_bin(int b, const float* thresholds, int count) {
  const float left = -1.f + static_cast<float>(b) * (2.f / kCodeBins), right = left + 2.f / kCodeBins;
  int first = 0, candidates = 0;
  for (int i = 0; i < count; ++i) {
    first += thresholds[i] < left - kBinMargin;
    candidates += thresholds[i] >= left - kBinMargin && thresholds[i] <= right + kBinMargin;
  }
  return static_cast<uint8_t>(first | (candidates > 2 ? 0x80 : 0));
}

// kvquant_code's level of a clamped normalized value c from the product, by its bin: the count of
// thresholds below the bin's first candidate plus the two candidates at or below c (thresholds past
// the last are infinite). `near` as search_code sets it: c within 1e-5 of a candidate, or a crowded bin.
__device__ __forceinline__ uint32_t binned_code(float c, const float* thresholds_s, const uint8_t* bins_s, bool& near) {
  const int b = min(static_cast<int>(__fmul_rn(__fadd_rn(c, 1.f), kCodeBins / 2)), kCodeBins - 1);
  const uint32_t bin = bins_s[b], first = bin & 0x1fu;
  const float t0 = thresholds_s[first], t1 = thresholds_s[first + 1];
  near |= (bin & 0x80u) != 0 || fabsf(__fsub_rn(c, t0)) <= 1e-5f || fabsf(__fsub_rn(c, t1)) <= 1e-5f;
  return first + (t0 <= c) + (t1 <= c);
}

// Sets code `index` of codes of BITS bits packed LSB-first into words held in registers (indexed by
// unrolled loops only).
template <int BITS, int WORDS>
__device__ inline void replace_code(uint32_t (&words)[WORDS], int index, uint32_t code) {
  constexpr uint32_t kMask = (1u << BITS) - 1u;
#pragma unroll
  for (int k = 0; k < WORDS; ++k) {
    const int shift = index * BITS - 32 * k;  // of the code's bit 0 in word k: negative where it begins in word k - 1
    if (shift > -BITS && shift < 32) {
      const uint32_t mask = shift >= 0 ? kMask << shift : kMask >> -shift;
      words[k] = (words[k] & ~mask) | ((shift >= 0 ? code << shift : code >> -shift) & mask);
    }
  }
}

// A quantized vector's normalization for coding, as one 16-byte read. A range of no width normalizes
// its elements to 0, as on the CPU: there inv_half and bound are 0.
struct __align__(16) KVQuantRange {
  float mid, inv_half, bound, half;  // the clamp: [-bound, bound]
};

// The codes of a dense row x (thread t: dense row t) as kvquant_code gives them, into `codes`, 32
// channels at a time: a pass without branches codes each from the product with 1 / half (by binary
// search up to 2 bits, by bins from 3, where the search would take more instructions) and marks the
// channels near a threshold, which kvquant_code itself then codes again (rarely any). KEYS: a range
// per channel, else the row's own (at threadIdx.x).
template <int BITS, bool KEYS>
__device__ void code_row(const float* x, const KVQuantRange* range_s, const float* thresholds_s, const uint8_t* bins_s,
                         uint32_t* codes) {
  constexpr int kLevels = 1 << BITS;
  constexpr int kSearched = BITS < 3 ? kLevels - 1 : 0;  // the search holds its thresholds in registers
  float thresholds[kSearched > 0 ? kSearched : 1];
#pragma unroll
  for (int i = 0; i < kSearched; ++i) thresholds[i] = thresholds_s[i];
  const KVQuantRange row_range = KEYS ? KVQuantRange{} : range_s[threadIdx.x];
#pragma unroll 1
  for (int g = 0; g < kTileDim; g += 32) {
    uint32_t words[BITS] = {}, near = 0;
#pragma unroll
    for (int j = 0; j < 32; ++j) {
      const KVQuantRange r = KEYS ? range_s[g + j] : row_range;
      const float n = __fmul_rn(__fsub_rn(x[g + j], r.mid), r.inv_half);
      bool close = false;
      const float c = fminf(fmaxf(n, -r.bound), r.bound);
      uint32_t code;
      if constexpr (BITS >= 3)
        code = binned_code(c, thresholds_s, bins_s, close);
      else
        code = search_code<BITS>(c, thresholds, close);
      near |= static_cast<uint32_t>(close) << j;
      const int bit = j * BITS, word = bit >> 5, shift = bit & 31;
      words[word] |= code << shift;
      if (shift + BITS > 32) words[word + 1] |= code >> (32 - shift);
    }
    for (; near != 0; near &= near - 1) {
      const int j = __ffs(near) - 1;
      const KVQuantRange r = KEYS ? range_s[g + j] : row_range;
      replace_code<BITS>(words, j, kvquant_code<kLevels>(x[g + j], r.mid, r.half, r.inv_half, thresholds_s));
    }
#pragma unroll
    for (int k = 0; k < BITS; ++k) codes[g / 32 * BITS + k] = words[k];
  }
}

// The outliers of a vector of `length` elements at(i): the first `per_vector` in the order of
// distance from the mean, farther first, lower index first on ties (as the CPU's nth_element orders
// them): those farther than `level`, then the first `at_level` of those at it. A distance compares
// as the bits of its absolute value (non-negative floats order as integers), a NaN as infinite.
struct OutlierCut {
  float mean = 0.f;
  int level = INT_MAX, at_level = 0;  // no outliers
  __device__ int key(float x) const { return __float_as_int(fminf(fabsf(x - mean), INFINITY)); }
  // Whether x, the next element in index order, is an outlier; seen: the elements at the level so far.
  __device__ bool outlier(float x, int& seen) const {
    const int k = key(x);
    const bool on_level = k == level, taken = (k > level) | (on_level & (seen < at_level));  // without branches
    seen += on_level;
    return taken;
  }
};

// The farthest of all is the least or the greatest element (a rounded distance grows with the element
// on either side of the mean); each further level, the farthest below the last, takes a pass.
template <typename At>
__device__ OutlierCut outlier_cut(const At& at, int length, int per_vector) {
  OutlierCut cut;
  if (per_vector == 0) return cut;
  float sum = 0.f, least = INFINITY, greatest = -INFINITY;
  for (int i = 0; i < length; ++i) sum += at(i), least = fminf(least, at(i)), greatest = fmaxf(greatest, at(i));
  cut.mean = sum / static_cast<float>(length);  // summed in order, as std::accumulate
  cut.level = max(cut.key(least), cut.key(greatest)), cut.at_level = 1;
  for (int left = per_vector - 1; left > 0;) {
    int count = 0, next = -1;  // at the level, and the next level (there is one while any are left)
    for (int i = 0; i < length; ++i) {
      const int k = cut.key(at(i));
      count += k == cut.level;
      next = max(next, k < cut.level ? k : -1);
    }
    const int more = min(count - cut.at_level, left);
    cut.at_level += more, left -= more;
    if (left > 0 && next < 0) break;  // no level left (per_vector > length): never loop forever
    if (left > 0) cut.level = next, cut.at_level = 1, --left;
  }
  return cut;
}

// grid: n_pages * kv_heads, page k of KV head h at k * kv_heads + h; block: kTileDim threads;
// dynamic shared memory: kFloatTileBytes. As KVQuantCodec::encode: per vector (a channel of the dense
// keys, a dense value row) its mean, its `per_vector` elements farthest from the mean kept sparse
// (lower index first on ties), the fp16 range of the rest, then every dense element's nearest level
// after normalizing into the range (rounded as the CPU rounds: no fused multiply-add); keys stored
// before RoPE turned back by rotate_tile_by_offsets. The page arrives by asynchronous 4-byte copies,
// all in flight at once: three blocks fit a multiprocessor.
template <int BITS>
__global__ void __launch_bounds__(kTileDim) encode_kvquant_pages_kernel(KVQuantShapeGpu shape, bool keys,
                                                                          const float* __restrict__ rows, int kv_heads,
                                                                          int first_position, const float* const* levels,
                                                                          const float* __restrict__ inv_freq,
                                                                          uint8_t* const* page_bytes) {
  extern __shared__ float tile[];  // [row][kTilePitch]
  __shared__ float thresholds_s[kKVQuantMaxLevels + 1], freq_s[kTileDim / 2];  // thresholds, then two infinities
  __shared__ uint8_t bins_s[kCodeBins];
  __shared__ KVQuantRange range_s[kTileDim];
  constexpr int kLevels = 1 << BITS, kWords = kTileDim * BITS / 32;
  const int block = blockIdx.x, h = block % kv_heads, tid = threadIdx.x;
  const int position = first_position + block / kv_heads * kTileDim;
  const KVQuantPageLayout l = KVQuantPageLayout::of(shape, keys, kTileDim, position);
  const float* in = rows + static_cast<size_t>(block) * kTileDim * kTileDim;
  uint8_t* out = page_bytes[block];
  for (int r = 0; r < kTileDim; ++r) copy_async_4(tile + r * kTilePitch + tid, in + r * kTileDim + tid);
  copy_async_commit();
  if (tid <= kLevels) thresholds_s[tid] = tid < kLevels - 1 ? 0.5f * (levels[h][tid] + levels[h][tid + 1]) : INFINITY;
  if (tid < kTileDim / 2) freq_s[tid] = inv_freq[tid];
  copy_async_wait<0>();
  __syncthreads();
  if constexpr (BITS >= 3)
    for (int b = tid; b < kCodeBins; b += kTileDim) bins_s[b] = code_bin(b, thresholds_s, kLevels - 1);
  if (keys && shape.pre_rope) {
    rotate_tile_by_offsets(FloatTile{tile}, position, -1.f, freq_s);
    __syncthreads();
  }
  for (int r = 0; r < l.n_sink; ++r)
    reinterpret_cast<__half*>(out)[r * kTileDim + tid] = store_half(tile[r * kTilePitch + tid]);

  if (tid < l.vectors) {  // thread v: vector v
    const int v = tid;
    auto at = [&](int i) {
      return tile[l.row_of(keys, v, i) * kTilePitch + KVQuantPageLayout::channel_of(keys, v, i)];
    };
    const OutlierCut cut = outlier_cut(at, l.length, l.per_vector);
    float lo = INFINITY, hi = -INFINITY;
    if (l.per_vector == 0) {
      for (int i = 0; i < l.length; ++i) lo = fminf(lo, at(i)), hi = fmaxf(hi, at(i));
    } else {
      uint8_t* o = out + l.outliers_at + static_cast<size_t>(v) * l.per_vector * 4;
      int seen = 0;
      // 32 elements from g without branches, the outliers marked, then written (in index order, as
      // the CPU sorts them); partial: fewer than 32 left (keys after sink rows).
      auto range_from = [&](int g, auto partial) {
        uint32_t marked = 0;
#pragma unroll
        for (int j = 0; j < 32; ++j) {
          if (decltype(partial)::value && g + j >= l.length) break;
          const float x = at(g + j);
          if (cut.outlier(x, seen))
            marked |= 1u << j;
          else
            lo = fminf(lo, x), hi = fmaxf(hi, x);
        }
        for (; marked != 0; marked &= marked - 1, o += 4) {
          const int i = g + __ffs(marked) - 1;
          *reinterpret_cast<uint16_t*>(o) = static_cast<uint16_t>(i);
          *reinterpret_cast<__half*>(o + 2) = store_half(at(i));
        }
      };
      int g = 0;
      for (; g + 32 <= l.length; g += 32) range_from(g, std::false_type{});
      if (g < l.length) range_from(g, std::true_type{});
    }
    if (lo > hi) lo = hi = 0.f;  // every element is an outlier
    const __half2 range = __halves2half2(store_half(lo), store_half(hi));
    reinterpret_cast<__half2*>(out + l.ranges_at)[v] = range;
    const float lo_r = __low2float(range), hi_r = __high2float(range), half = __fmul_rn(0.5f, __fsub_rn(hi_r, lo_r));
    const float mid = __fmul_rn(0.5f, __fadd_rn(hi_r, lo_r));
    range_s[v] = half > 0.f ? KVQuantRange{mid, __frcp_rn(half), 1.f, half} : KVQuantRange{mid, 0.f, 0.f, half};
  }
  __syncthreads();

  if (tid < l.dense) {  // thread t: the codes of dense row t
    const float* x = tile + (l.n_sink + tid) * kTilePitch;
    uint32_t* codes = reinterpret_cast<uint32_t*>(out + l.codes_at) + tid * kWords;
    if (keys)
      code_row<BITS, true>(x, range_s, thresholds_s, bins_s, codes);
    else
      code_row<BITS, false>(x, range_s, thresholds_s, bins_s, codes);
  }
}

}  // namespace kernels

void require_kvquant_gpu(const KVQuantShapeGpu& shape) {
  RINGKV_REQUIRE(shape.bits >= 1 && shape.bits <= 4, "the GPU's KVQuant kernels take 1 to 4 bits, not " + std::to_string(shape.bits));
  RINGKV_REQUIRE(shape.outliers >= 0 && shape.outliers <= 0.5 && shape.sink >= 0,
                 "KVQuant outliers must lie in [0, 0.5] and sink be non-negative");
}


void encode_kvquant_pages_gpu(const KVQuantShapeGpu& shape, bool keys, const float* rows, int n_pages, int kv_heads,
                              int first_position, const float* const* levels, const float* inv_freq,
                              uint8_t* const* page_bytes, cudaStream_t stream) {
  require_kvquant_gpu(shape);
  if (n_pages == 0) return;
  with_code_bits(shape.bits, "encode_kvquant_pages_gpu", [&](auto bits) {
    const auto kernel = kernels::encode_kvquant_pages_kernel<decltype(bits)::value>;
    kernels::allow_shared(kernel, kernels::kFloatTileBytes);
    kernel<<<n_pages * kv_heads, kernels::kTileDim, kernels::kFloatTileBytes, stream>>>(shape, keys, rows, kv_heads, first_position,
                                                                                     levels, inv_freq, page_bytes);
  });
  RINGKV_CHECK_CUDA(cudaGetLastError());
}

void decode_kvquant_pages_gpu(const KVQuantShapeGpu& shape, bool keys, const uint8_t* const* pages, int n_pages, int kv_heads,
                              int first_position, const float* const* levels, const float* inv_freq, uint16_t* rows,
                              cudaStream_t stream) {
  require_kvquant_gpu(shape);
  with_code_bits(shape.bits, "decode_kvquant_pages_gpu", [&](auto bits) {
    const kernels::KVQuantReader<decltype(bits)::value> reader{shape, levels, levels};  // one role: its levels for both
    decode_pages_tiled(reader, keys, pages, n_pages, kv_heads, first_position, inv_freq, rows, stream);
  });
}

}  // namespace ringkv
