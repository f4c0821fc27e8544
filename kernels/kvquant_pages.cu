// Encoding and decoding of KVQuant pages on the GPU (layout: kernels/kvquant_pages.cuh).
#include "kernels/kvquant_pages.cuh"
#include "kernels/tiled_pages.cuh"

namespace ringkv {

namespace kernels {

// grid: n_pages * kv_heads, page k of KV head h at k * kv_heads + h; block: kTileDim threads;
// dynamic shared memory: kFloatTileBytes. As KVQuantCodec::encode: per vector (a channel of the dense
// keys, a dense value row) its mean, its `per_vector` elements farthest from the mean kept sparse
// (lower index first on ties), the fp16 range of the rest, then every dense element's nearest level
// after normalizing into the range (rounded as the CPU rounds: no fused multiply-add).
template <int BITS>
__global__ void __launch_bounds__(kTileDim) encode_kvquant_pages_kernel(KVQuantShapeGpu shape, bool keys,
                                                                          const float* __restrict__ rows, int kv_heads,
                                                                          int first_position, const float* const* levels,
                                                                          const float* __restrict__ inv_freq,
                                                                          uint8_t* const* page_bytes) {
  extern __shared__ float tile[];  // [row][kTilePitch]
  __shared__ float thresholds_s[kKVQuantMaxLevels], lo_s[kTileDim], hi_s[kTileDim], freq_s[kTileDim / 2];
  __shared__ uint8_t outlier_s[kTileDim][kTileDim + 4];  // [row][channel]; padded: a column in distinct banks
  constexpr int kLevels = 1 << BITS, kWords = kTileDim * BITS / 32;
  const int block = blockIdx.x, h = block % kv_heads, tid = threadIdx.x;
  const int position = first_position + block / kv_heads * kTileDim;
  const KVQuantPageLayout l = KVQuantPageLayout::of(shape, keys, kTileDim, position);
  const float* in = rows + static_cast<size_t>(block) * kTileDim * kTileDim;
  uint8_t* out = page_bytes[block];
  for (int r = 0; r < kTileDim; ++r) {
    tile[r * kTilePitch + tid] = in[r * kTileDim + tid];
    outlier_s[r][tid] = 0;
  }
  if (tid < kLevels - 1) thresholds_s[tid] = 0.5f * (levels[h][tid] + levels[h][tid + 1]);
  if (tid < kTileDim / 2) freq_s[tid] = inv_freq[tid];
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
    auto flag = [&](int i) -> uint8_t& { return outlier_s[l.row_of(keys, v, i)][KVQuantPageLayout::channel_of(keys, v, i)]; };
    float sum = 0.f;
    for (int i = 0; i < l.length; ++i) sum += at(i);  // in order, as std::accumulate
    const float mean = sum / static_cast<float>(l.length);
    for (int j = 0; j < l.per_vector; ++j) {
      int best = -1;  // the first element not taken yet, unless a farther one (a NaN distance never is)
      float best_distance = -1.f;
      for (int i = 0; i < l.length; ++i) {
        const float d = fabsf(at(i) - mean);
        if (!flag(i) && (best < 0 || d > best_distance)) best_distance = d, best = i;
      }
      flag(best) = 1;
    }
    float lo = INFINITY, hi = -INFINITY;
    uint8_t* o = out + l.outliers_at + static_cast<size_t>(v) * l.per_vector * 4;
    for (int i = 0; i < l.length; ++i) {
      if (flag(i)) {  // in index order, as the CPU sorts them
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
    lo_s[v] = __low2float(range), hi_s[v] = __high2float(range);
  }
  __syncthreads();

  if (tid < l.dense) {  // thread t: the codes of dense row t
    const float* x = tile + (l.n_sink + tid) * kTilePitch;
    uint32_t words[kWords] = {};
#pragma unroll
    for (int c = 0; c < kTileDim; ++c) {
      const int v = keys ? c : tid;
      const float lo = lo_s[v], hi = hi_s[v], half = __fmul_rn(0.5f, __fsub_rn(hi, lo));
      const float n = half > 0.f ? __fdiv_rn(__fsub_rn(x[c], __fmul_rn(0.5f, __fadd_rn(hi, lo))), half) : 0.f;
      const float clamped = fminf(fmaxf(n, -1.f), 1.f);
      uint32_t code = 0;
#pragma unroll
      for (int i = 0; i < kLevels - 1; ++i) code += thresholds_s[i] <= clamped;
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
