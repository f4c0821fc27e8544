// Encoding and decoding of KVQuant pages on the GPU (layout: kernels/kvquant_pages.cuh).
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

// grid: n_pages * kv_heads, page k of KV head h at k * kv_heads + h; block: kTileDim threads;
// dynamic shared memory: kFloatTileBytes. As KVQuantCodec::encode: per vector (a channel of the dense
// keys, a dense value row) its mean, its `per_vector` elements farthest from the mean kept sparse
// (lower index first on ties), the fp16 range of the rest, then every dense element's nearest level
// after normalizing into the range (rounded as the CPU rounds: no fused multiply-add). The page
// arrives by asynchronous 4-byte copies, all in flight at once, and the outliers are flagged in a
// bit mask: three blocks fit a multiprocessor.
template <int BITS>
__global__ void __launch_bounds__(kTileDim) encode_kvquant_pages_kernel(KVQuantShapeGpu shape, bool keys,
                                                                          const float* __restrict__ rows, int kv_heads,
                                                                          int first_position, const float* const* levels,
                                                                          const float* __restrict__ inv_freq,
                                                                          uint8_t* const* page_bytes) {
  extern __shared__ float tile[];  // [row][kTilePitch]
  __shared__ float thresholds_s[kKVQuantMaxLevels], mid_s[kTileDim], half_s[kTileDim], inv_half_s[kTileDim], freq_s[kTileDim / 2];
  __shared__ uint32_t outlier_s[kTileDim][kTileDim / 32];  // [row][channel / 32], bit channel % 32
  constexpr int kLevels = 1 << BITS, kWords = kTileDim * BITS / 32;
  const int block = blockIdx.x, h = block % kv_heads, tid = threadIdx.x;
  const int position = first_position + block / kv_heads * kTileDim;
  const KVQuantPageLayout l = KVQuantPageLayout::of(shape, keys, kTileDim, position);
  const float* in = rows + static_cast<size_t>(block) * kTileDim * kTileDim;
  uint8_t* out = page_bytes[block];
  for (int r = 0; r < kTileDim; ++r) copy_async_4(tile + r * kTilePitch + tid, in + r * kTileDim + tid);
  copy_async_commit();
  for (int w = tid; w < kTileDim * kTileDim / 32; w += kTileDim) outlier_s[w / 4][w % 4] = 0;
  if (tid < kLevels - 1) thresholds_s[tid] = 0.5f * (levels[h][tid] + levels[h][tid + 1]);
  if (tid < kTileDim / 2) freq_s[tid] = inv_freq[tid];
  copy_async_wait<0>();
  __syncthreads();
  if (keys && shape.pre_rope) {
    rotate_tile<true>(FloatTile{tile}, position, -1.f, freq_s);
    __syncthreads();
  }
  for (int r = 0; r < l.n_sink; ++r)
    reinterpret_cast<__half*>(out)[r * kTileDim + tid] = store_half(tile[r * kTilePitch + tid]);

  if (tid < l.vectors) {  // thread v: vector v
    const int v = tid;
    auto at = [&](int i) -> float& { return tile[l.row_of(keys, v, i) * kTilePitch + KVQuantPageLayout::channel_of(keys, v, i)]; };
    auto flagged = [&](int i) {
      const int c = KVQuantPageLayout::channel_of(keys, v, i);
      return (outlier_s[l.row_of(keys, v, i)][c / 32] >> (c % 32)) & 1u;
    };
    auto flag = [&](int i) {  // other threads' vectors share the word (keys: the row)
      const int c = KVQuantPageLayout::channel_of(keys, v, i);
      atomicOr(&outlier_s[l.row_of(keys, v, i)][c / 32], 1u << (c % 32));
    };
    float sum = 0.f;
    for (int i = 0; i < l.length; ++i) sum += at(i);  // in order, as std::accumulate
    const float mean = sum / static_cast<float>(l.length);
    for (int j = 0; j < l.per_vector; ++j) {
      int best = -1;  // the first element not taken yet, unless a farther one (a NaN distance never is)
      float best_distance = -1.f;
      for (int i = 0; i < l.length; ++i) {
        const float d = fabsf(at(i) - mean);
        if (!flagged(i) && (best < 0 || d > best_distance)) best_distance = d, best = i;
      }
      flag(best);
    }
    float lo = INFINITY, hi = -INFINITY;
    uint8_t* o = out + l.outliers_at + static_cast<size_t>(v) * l.per_vector * 4;
    for (int i = 0; i < l.length; ++i) {
      if (flagged(i)) {  // in index order, as the CPU sorts them
        *reinterpret_cast<uint16_t*>(o) = static_cast<uint16_t>(i);
        *reinterpret_cast<__half*>(o + 2) = store_half(at(i));
        o += 4;
      } else {
        lo = fminf(lo, at(i)), hi = fmaxf(hi, at(i));
      }
    }
    if (lo > hi) lo = hi = 0.f;  // every element is an outlier
    const __half2 range = __halves2half2(store_half(lo), store_half(hi));
    reinterpret_cast<__half2*>(out + l.ranges_at)[v] = range;
    const float lo_r = __low2float(range), hi_r = __high2float(range), half = __fmul_rn(0.5f, __fsub_rn(hi_r, lo_r));
    mid_s[v] = __fmul_rn(0.5f, __fadd_rn(hi_r, lo_r)), half_s[v] = half, inv_half_s[v] = half > 0.f ? __frcp_rn(half) : 0.f;
  }
  __syncthreads();

  if (tid < l.dense) {  // thread t: the codes of dense row t
    const float* x = tile + (l.n_sink + tid) * kTilePitch;
    uint32_t words[kWords] = {};
#pragma unroll
    for (int c = 0; c < kTileDim; ++c) {
      const int v = keys ? c : tid;
      const uint32_t code = kvquant_code<kLevels>(x[c], mid_s[v], half_s[v], inv_half_s[v], thresholds_s);
      const int bit = c * BITS, word = bit >> 5, shift = bit & 31;
      words[word] |= code << shift;
      if (shift + BITS > 32) words[word + 1] |= code >> (32 - shift);
    }
    uint32_t* codes = reinterpret_cast<uint32_t*>(out + l.codes_at) + tid * kWords;
#pragma unroll
    for (int i = 0; i < kWords; ++i) codes[i] = words[i];
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
