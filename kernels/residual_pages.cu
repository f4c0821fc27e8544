// Encoding and decoding of RVQ pages on the GPU (layout: kernels/residual_pages.cuh).
#include "kernels/centroid_search_mma.cuh"
#include "kernels/cuda_check.hpp"
#include "kernels/pack_codes.cuh"
#include "kernels/residual_pages.cuh"
#include "kernels/vector_search.cuh"
#include "kernels/tiled_pages.cuh"

namespace ringkv {

namespace kernels {

constexpr int kMaxResidualCodesPerToken = 256;

// The encoder's search runs on tensor cores where the group and codebooks allow and two staged
// codebooks fit shared memory, with two warps per token's worth of threads.
template <bool TENSOR_CORES>
constexpr int kEncodeResidualThreads = TENSOR_CORES ? 2 * kTileDim : kTileDim;

// Shared bytes of the search: the codebook entries' squared norms (fp32) or two staged codebooks.
__host__ __device__ inline size_t residual_search_bytes(const ResidualShapeGpu& s, bool tensor_cores) {
  return tensor_cores ? 2 * staged_centroid_bytes(s.group, s.codes) : sizeof(float) * s.depth * s.codes;
}

// Dynamic shared memory of the encoder: the rows, the search's, the codes.
inline size_t encode_residual_shared_bytes(const ResidualShapeGpu& s, bool tensor_cores) {
  return kFloatTileBytes + residual_search_bytes(s, tensor_cores) + static_cast<size_t>(kTileDim) * (kTileDim / s.group) * s.depth;
}

inline bool residual_search_on_tensor_cores(const ResidualShapeGpu& s) {
  return tensor_core_search_fits(s.group, s.codes) &&
         encode_residual_shared_bytes(s, true) <= static_cast<size_t>(max_shared_bytes_per_block());
}

// The fp32 search: thread t takes token t (x: its scaled row), group by group, level by level
// (every thread at the same entry: one broadcast read). norms: [depth][codes].
template <int GROUP>
__device__ void encode_residual_fp32(const ResidualShapeGpu& shape, bool keys, const float* x, const float* books,
                                     const float* norms, uint8_t* codes_s) {
  const int t = threadIdx.x, groups = kTileDim / GROUP, per_token = groups * shape.depth;
  for (int g = 0; g < groups; ++g) {
    float r[GROUP];
#pragma unroll
    for (int j = 0; j < GROUP; ++j) r[j] = x[residual_channel(keys, groups, GROUP, g, j)];
    for (int l = 0; l < shape.depth; ++l) {
      const float* book = books + static_cast<size_t>(l) * shape.codes * GROUP;
      float r2[GROUP];  // -2r
#pragma unroll
      for (int j = 0; j < GROUP; ++j) r2[j] = -2.0f * r[j];
      float best = INFINITY;
      int arg = 0;
#pragma unroll 4
      for (int k = 0; k < shape.codes; ++k) {
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
}

// The tensor-core search: level by level, the block stages the level's codebook (double-buffered:
// one barrier per level) and each warp takes 16 tokens of a channel group at a time, subtracting the
// chosen entries from the residuals in the tile (a lane updates the channels it read).
template <int GROUP>
__device__ void encode_residual_mma(const ResidualShapeGpu& shape, bool keys, float* tile, const float* books,
                                    unsigned char* staged, uint8_t* codes_s) {
  constexpr int kTiles = kTileDim / 16, kSteps = kCentroidSteps<GROUP>;
  const int groups = kTileDim / GROUP, per_token = groups * shape.depth, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  const int lane = threadIdx.x % 32, quad_row = lane / 4, i = lane % 4;
  const size_t staged_bytes = staged_centroid_bytes(GROUP, shape.codes);
  for (int l = 0; l < shape.depth; ++l) {
    const float* book = books + static_cast<size_t>(l) * shape.codes * GROUP;
    unsigned char* table = staged + (l % 2) * staged_bytes;
    stage_centroids<GROUP>(book, shape.codes, table);
    __syncthreads();  // also: the residuals of level l - 1 are in the tile
    for (int item = warp; item < kTiles * groups; item += warps) {
      const int first = item % kTiles * 16, g = item / kTiles;
      const auto at = [&](int r, int j) -> float& { return tile[(first + r) * kTilePitch + residual_channel(keys, groups, GROUP, g, j)]; };
      const uint2 code = nearest_of_16_rows<GROUP>(table, shape.codes, at);
#pragma unroll
      for (int s = 0; s < kSteps; ++s)
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          const int j = 8 * s + i + (q / 2) * 4;
          if (j < GROUP) at(quad_row + (q % 2) * 8, j) -= book[(q % 2 ? code.y : code.x) * GROUP + j];
        }
      if (i == 0) {
        codes_s[(first + quad_row) * per_token + g * shape.depth + l] = static_cast<uint8_t>(code.x);
        codes_s[(first + quad_row + 8) * per_token + g * shape.depth + l] = static_cast<uint8_t>(code.y);
      }
    }
  }
}

// grid: n_pages * kv_heads, page k of KV head h at k * kv_heads + h; block: kEncodeResidualThreads<TENSOR_CORES>
// (the first kTileDim take a token each); dynamic shared memory: encode_residual_shared_bytes. As
// ResidualCodec::encode: the token's scale (its standard deviation in double, or its
// root-mean-square for a nearly constant vector) rounded to fp16; then per channel group, the scaled
// channels' nearest entry of each codebook in turn (squared norm plus -2 x.c, the first index of
// least distance winning, as the CPU's search but for near-ties), subtracted from the residual.
template <int GROUP, bool TENSOR_CORES>
__global__ void __launch_bounds__(kEncodeResidualThreads<TENSOR_CORES>)
    encode_residual_pages_kernel(ResidualShapeGpu shape, int code_bits, bool keys, const float* __restrict__ rows, int kv_heads,
                                 int first_position, const float* const* codebooks, const float* __restrict__ inv_freq,
                                 uint8_t* const* page_bytes) {
  extern __shared__ __align__(16) unsigned char shared[];
  float* tile = reinterpret_cast<float*>(shared);
  unsigned char* search = shared + kFloatTileBytes;  // norms [depth][codes], or two staged codebooks
  uint8_t* codes_s = search + residual_search_bytes(shape, TENSOR_CORES);
  __shared__ float freq_s[kTileDim / 2];
  const int block = blockIdx.x, h = block % kv_heads, t = threadIdx.x, groups = kTileDim / GROUP;
  const bool token_thread = t < kTileDim;
  const int position = first_position + block / kv_heads * kTileDim, per_token = groups * shape.depth;
  const float* in = rows + static_cast<size_t>(block) * kTileDim * kTileDim;
  const float* books = codebooks[h];
  uint8_t* out = page_bytes[block];
  // A constant stride: the loads unroll and overlap.
  for (int e = t; e < kTileDim * kTileDim; e += kEncodeResidualThreads<TENSOR_CORES>)
    tile[e / kTileDim * kTilePitch + e % kTileDim] = in[e];
  if constexpr (!TENSOR_CORES) {
    float* norms = reinterpret_cast<float*>(search);
    for (int e = t; e < shape.depth * shape.codes; e += blockDim.x) {
      float c[GROUP];
      load_vector<GROUP>(books + e * GROUP, c);
      norms[e] = squared_norm<GROUP>(c);
    }
  }
  if (t < kTileDim / 2) freq_s[t] = inv_freq[t];
  __syncthreads();
  if (keys && shape.pre_rope) {
    if (token_thread) rotate_tile(FloatTile{tile}, position, -1.f, freq_s);
    __syncthreads();
  }
  if (token_thread) {
    const float* x = tile + t * kTilePitch;
    double mean = 0, squares = 0, spread = 0;
    for (int i = 0; i < kTileDim; ++i) mean += x[i], squares += static_cast<double>(x[i]) * x[i];
    mean /= kTileDim;
    for (int i = 0; i < kTileDim; ++i) spread += (x[i] - mean) * (x[i] - mean);
    const double sd = sqrt(spread / kTileDim), rms = sqrt(squares / kTileDim);
    const __half scale = store_half(static_cast<float>(sd > 1e-3 * rms ? sd : rms));
    reinterpret_cast<__half*>(out)[t] = scale;
    const float inv = __half2float(scale) > 0.f ? 1.0f / __half2float(scale) : 0.f;
    for (int i = 0; i < kTileDim; ++i) tile[t * kTilePitch + i] *= inv;  // the residuals start scaled
  }
  if constexpr (TENSOR_CORES)
    encode_residual_mma<GROUP>(shape, keys, tile, books, search, codes_s);
  else
    encode_residual_fp32<GROUP>(shape, keys, tile + t * kTilePitch, books, reinterpret_cast<const float*>(search), codes_s);
  __syncthreads();
  // A page's codes fill whole words (128 tokens).
  pack_codes(codes_s, kTileDim * per_token, code_bits, reinterpret_cast<uint32_t*>(out + 2 * kTileDim));
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
  const bool tensor_cores = kernels::residual_search_on_tensor_cores(shape);
  const size_t shared = kernels::encode_residual_shared_bytes(shape, tensor_cores);
  const size_t most = static_cast<size_t>(max_shared_bytes_per_block());
  RINGKV_REQUIRE(shared <= most, "encode_residual_pages_gpu: a page of depth=" + std::to_string(shape.depth) + ", codes=" +
                                     std::to_string(shape.codes) + ", group=" + std::to_string(shape.group) + " needs " +
                                     std::to_string(shared) + " bytes of shared memory; the GPU gives a block " + std::to_string(most));
  with_residual_group(shape.group, "encode_residual_pages_gpu", [&](auto group) {
    constexpr int kGroup = decltype(group)::value;
    auto kernel = kernels::encode_residual_pages_kernel<kGroup, false>;
    if constexpr (kernels::tensor_core_channels(kGroup))
      if (tensor_cores) kernel = kernels::encode_residual_pages_kernel<kGroup, true>;
    kernels::allow_shared(kernel, shared);
    kernel<<<n_pages * kv_heads, tensor_cores ? kernels::kEncodeResidualThreads<true> : kernels::kEncodeResidualThreads<false>, shared, stream>>>(
        shape, kernels::residual_code_bits(shape), keys, rows, kv_heads, first_position, codebooks, inv_freq, page_bytes);
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
