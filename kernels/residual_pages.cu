// Encoding and decoding of RVQ pages on the GPU (layout: kernels/residual_pages.cuh).
#include "kernels/residual_pages.cuh"
#include "kernels/vector_search.cuh"
#include "kernels/tiled_pages.cuh"

namespace ringkv {

namespace kernels {

constexpr int kMaxResidualCodesPerToken = 256;

// Dynamic shared memory of the encoder: the rows, the codebook entries' squared norms, the codes.
inline size_t encode_residual_shared_bytes(const ResidualShapeGpu& s) {
  return kFloatTileBytes + sizeof(float) * s.depth * s.codes + static_cast<size_t>(kTileDim) * (kTileDim / s.group) * s.depth;
}

// grid: n_pages * kv_heads, page k of KV head h at k * kv_heads + h; block: kTileDim threads (one
// per token); dynamic shared memory: encode_residual_shared_bytes. As ResidualCodec::encode: the
// token's scale (its standard deviation in double, or its root-mean-square for a nearly constant
// vector) rounded to fp16; then per channel group, the scaled channels' nearest entry of each
// codebook in turn (squared norm plus -2 x.c summed with fused multiply-adds, the first index of
// least distance winning, as the CPU's search but for near-ties), subtracted from the residual.
template <int GROUP>
__global__ void __launch_bounds__(kTileDim) encode_residual_pages_kernel(ResidualShapeGpu shape, int code_bits, bool keys,
                                                                        const float* __restrict__ rows, int kv_heads,
                                                                        int first_position, const float* const* codebooks,
                                                                        const float* __restrict__ inv_freq,
                                                                        uint8_t* const* page_bytes) {
  extern __shared__ __align__(16) unsigned char shared[];
  float* tile = reinterpret_cast<float*>(shared);
  float* norms = reinterpret_cast<float*>(shared + kFloatTileBytes);                   // [depth][codes]
  uint8_t* codes_s = reinterpret_cast<uint8_t*>(norms + shape.depth * shape.codes);  // [token][group][level]
  __shared__ float freq_s[kTileDim / 2];
  const int block = blockIdx.x, h = block % kv_heads, t = threadIdx.x, groups = kTileDim / GROUP;
  const int position = first_position + block / kv_heads * kTileDim, per_token = groups * shape.depth;
  const float* in = rows + static_cast<size_t>(block) * kTileDim * kTileDim;
  const float* books = codebooks[h];
  uint8_t* out = page_bytes[block];
  for (int r = 0; r < kTileDim; ++r) tile[r * kTilePitch + t] = in[r * kTileDim + t];
  for (int e = t; e < shape.depth * shape.codes; e += blockDim.x) {
    float c[GROUP];
    load_vector<GROUP>(books + e * GROUP, c);
    norms[e] = squared_norm<GROUP>(c);
  }
  if (t < kTileDim / 2) freq_s[t] = inv_freq[t];
  __syncthreads();
  if (keys && shape.pre_rope) {
    rotate_tile<true>(FloatTile{tile}, position, -1.f, freq_s);
    __syncthreads();
  }
  const float* x = tile + t * kTilePitch;
  double mean = 0, squares = 0, spread = 0;
  for (int i = 0; i < kTileDim; ++i) mean += x[i], squares += static_cast<double>(x[i]) * x[i];
  mean /= kTileDim;
  for (int i = 0; i < kTileDim; ++i) spread += (x[i] - mean) * (x[i] - mean);
  const double sd = sqrt(spread / kTileDim), rms = sqrt(squares / kTileDim);
  const __half scale = store_half(static_cast<float>(sd > 1e-3 * rms ? sd : rms));
  reinterpret_cast<__half*>(out)[t] = scale;
  const float inv = __half2float(scale) > 0.f ? 1.0f / __half2float(scale) : 0.f;
  for (int g = 0; g < groups; ++g) {
    float r[GROUP];
#pragma unroll
    for (int j = 0; j < GROUP; ++j) r[j] = x[residual_channel(keys, groups, GROUP, g, j)] * inv;
    for (int l = 0; l < shape.depth; ++l) {
      const float* book = books + static_cast<size_t>(l) * shape.codes * GROUP;
      float r2[GROUP];  // -2r
#pragma unroll
      for (int j = 0; j < GROUP; ++j) r2[j] = -2.0f * r[j];
      float best = INFINITY;
      int arg = 0;
#pragma unroll 4
      for (int k = 0; k < shape.codes; ++k) {  // every thread at the same entry: one broadcast read
        float c[GROUP];
        load_vector<GROUP>(book + k * GROUP, c);
        float d = norms[l * shape.codes + k];
#pragma unroll
        for (int j = 0; j < GROUP; ++j) d = fmaf(r2[j], c[j], d);
        if (d < best) best = d, arg = k;
      }
      float c[GROUP];
      load_vector<GROUP>(book + arg * GROUP, c);
#pragma unroll
      for (int j = 0; j < GROUP; ++j) r[j] -= c[j];
      codes_s[t * per_token + g * shape.depth + l] = static_cast<uint8_t>(arg);
    }
  }
  __syncthreads();
  // Word w of the codes holds bits [32w, 32w + 32) in (token, group, level) order; a page's codes
  // fill whole words (128 tokens).
  uint32_t* words = reinterpret_cast<uint32_t*>(out + 2 * kTileDim);
  const int n_codes = kTileDim * per_token, n_words = n_codes * code_bits / 32;
  for (int w = t; w < n_words; w += blockDim.x) {
    uint32_t word = 0;
    for (int i = w * 32 / code_bits; i < n_codes && i * code_bits < (w + 1) * 32; ++i) {
      const int shift = i * code_bits - w * 32;  // negative: the code began in the word before
      word |= shift >= 0 ? static_cast<uint32_t>(codes_s[i]) << shift : static_cast<uint32_t>(codes_s[i]) >> -shift;
    }
    words[w] = word;
  }
}

}  // namespace kernels

void require_residual_gpu(const ResidualShapeGpu& s) {
  const auto shape = [&] {
    return "depth=" + std::to_string(s.depth) + ", codes=" + std::to_string(s.codes) + ", group=" + std::to_string(s.group);
  };
  RINGKV_REQUIRE(s.group == 2 || s.group == 4 || s.group == 8 || s.group == 16,
                 "the GPU's RVQ kernels take groups of 2, 4, 8 or 16 channels, not " + shape());
  RINGKV_REQUIRE(s.codes >= 2 && s.codes <= 256 && s.depth >= 1, "the GPU's RVQ kernels take 2 to 256 codes per codebook, not " + shape());
  RINGKV_REQUIRE(static_cast<size_t>(s.depth) * s.codes * s.group <= 16384,
                 "the GPU's RVQ kernels hold at most 16384 codebook values per role in shared memory, not " + shape());
  RINGKV_REQUIRE(kernels::kTileDim / s.group * s.depth <= kernels::kMaxResidualCodesPerToken,
                 "the GPU's RVQ encoder takes at most 256 codes per token (groups x depth), not " + shape());
}

void encode_residual_pages_gpu(const ResidualShapeGpu& shape, bool keys, const float* rows, int n_pages, int kv_heads,
                               int first_position, const float* const* codebooks, const float* inv_freq,
                               uint8_t* const* page_bytes, cudaStream_t stream) {
  require_residual_gpu(shape);
  if (n_pages == 0) return;
  const size_t shared = kernels::encode_residual_shared_bytes(shape);
  with_residual_group(shape.group, "encode_residual_pages_gpu", [&](auto group) {
    const auto kernel = kernels::encode_residual_pages_kernel<decltype(group)::value>;
    kernels::allow_shared(kernel, shared);
    kernel<<<n_pages * kv_heads, kernels::kTileDim, shared, stream>>>(shape, kernels::residual_code_bits(shape), keys, rows, kv_heads,
                                                                      first_position, codebooks, inv_freq, page_bytes);
  });
  RINGKV_CHECK_CUDA(cudaGetLastError());
}

void decode_residual_pages_gpu(const ResidualShapeGpu& shape, bool keys, const uint8_t* const* pages, int n_pages, int kv_heads,
                               int first_position, const float* const* codebooks, const float* inv_freq, uint16_t* rows,
                               cudaStream_t stream) {
  require_residual_gpu(shape);
  with_residual_group(shape.group, "decode_residual_pages_gpu", [&](auto group) {
    // One role's codebooks in fp32: the rows ResidualCodec::decode_rows gives.
    const kernels::ResidualReader<decltype(group)::value, float> reader{shape, codebooks, nullptr, kernels::residual_code_bits(shape)};
    decode_pages_tiled(reader, keys, pages, n_pages, kv_heads, first_position, inv_freq, rows, stream);
  });
}

}  // namespace ringkv
