// Decode attention over KVQuant pages read in place (kernels/tiled_pages.cuh with the KVQuant reader).
#include "kernels/kvquant_pages.cuh"
#include "kernels/tiled_pages.cuh"

namespace ringkv {

void decode_attention_kvquant_gpu(const KVQuantPagesGpu& pages, const float* queries, int n_queries, float scale, int splits,
                                  float* split_out, float* split_lse, float* out, float* lse, cudaStream_t stream) {
  require_kvquant_gpu(pages.shape);
  with_code_bits(pages.shape.bits, "decode_attention_kvquant_gpu", [&](auto bits) {
    const kernels::KVQuantReader<decltype(bits)::value> reader{pages.shape, pages.key_levels, pages.value_levels};
    decode_attention_tiled(reader, pages.pages, queries, n_queries, scale, splits, split_out, split_lse, out, lse, stream);
  });
}

}  // namespace ringkv
