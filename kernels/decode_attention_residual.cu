// Decode attention over RVQ pages read in place (kernels/tiled_pages.cuh with the RVQ reader).
#include "kernels/residual_pages.cuh"
#include "kernels/tiled_pages.cuh"

namespace ringkv {

void decode_attention_residual_gpu(const ResidualPagesGpu& pages, const float* queries, int n_queries, float scale, int splits,
                                   float* split_out, float* split_lse, float* out, float* lse, cudaStream_t stream) {
  require_residual_gpu(pages.shape);
  with_residual_group(pages.shape.group, "decode_attention_residual_gpu", [&](auto group) {
    const kernels::ResidualReader<decltype(group)::value, __half> reader{pages.shape, pages.key_codebooks, pages.value_codebooks,
                                                                 kernels::residual_code_bits(pages.shape)};
    decode_attention_tiled(reader, pages.pages, queries, n_queries, scale, splits, split_out, split_lse, out, lse, stream);
  });
}

}  // namespace ringkv
