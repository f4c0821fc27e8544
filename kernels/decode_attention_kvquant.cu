// Decode attention over KVQuant pages: the kernel that reads the codes in place
// (kernels/decode_attention_kvquant.cuh; as integers where the levels are even and the codes 1, 2 or
// 4 bits, through tables of level pairs else), the pages holding sink rows through the tiled kernel
// (kernels/tiled_pages.cuh with the KVQuant reader).
#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>

#include "kernels/decode_attention_gpu.hpp"
#include "kernels/decode_attention_kvquant.cuh"
#include "kernels/kvquant_pages.cuh"
#include "kernels/tiled_pages.cuh"

namespace ringkv {

namespace {

// Whether the kernel reads the levels from tables of level pairs, not the codes as integers.
bool reads_level_pairs(const KVQuantShapeGpu& shape) { return !shape.even_levels || shape.bits == 3; }

int sink_pages(const KVQuantShapeGpu& shape, int n_pages) { return std::min(n_pages, (shape.sink + 127) / 128); }

int outliers_per_vector(const KVQuantShapeGpu& shape) {
  return static_cast<int>(std::min<long long>(128, std::llround(shape.outliers * 128)));
}

// Warps of a block (one block a multiprocessor) and its shared memory: the RoPE table and each
// warp's page slots and outlier arrays, within the 227 KiB a block may take.
struct DenseLaunch {
  int warps;
  size_t shared;
};
DenseLaunch dense_launch(const KVQuantShapeGpu& shape) {
  constexpr size_t kMaxShared = 227 * 1024;
  const int per_vector = outliers_per_vector(shape);
  const size_t table = shape.pre_rope ? kernels::kKVQuantRopeTableBytes : 0;
  size_t page = 0, tables = 0;
  with_code_bits(shape.bits, "decode_attention_kvquant_gpu", [&](auto bits) {
    page = kernels::kvquant_dense_page_bytes<decltype(bits)::value>(per_vector);
    tables = reads_level_pairs(shape) ? kernels::kvquant_pair_tables_bytes<decltype(bits)::value>() : 0;
  });
  const size_t warp = 3 * page + (per_vector > 0 ? kernels::kKVQuantFixBytes : 0) + tables;
  const int warps = static_cast<int>(std::min<size_t>(kernels::kKVQuantMaxWarps, (kMaxShared - table) / warp));
  RINGKV_REQUIRE(warps >= 1, "KVQuant decode attention: a warp's pages and outliers take " + std::to_string(warp) +
                                 " bytes of shared memory, more than a block has");
  return {warps, table + warps * warp};
}

// The kernel with all the shared memory a block may take allowed, once per process (a rank drives
// one GPU; the attribute call costs microseconds).
template <int BITS, int NQ, bool PRE_ROPE, bool TABLE>
auto configured_dense_kernel() {
  static const auto kernel = [] {
    const auto k = kernels::decode_attention_kvquant_kernel<BITS, NQ, PRE_ROPE, TABLE>;
    kernels::allow_shared(k, 227 * 1024);
    return k;
  }();
  return kernel;
}

}  // namespace

int decode_attention_kvquant_splits(int n_pages, int streams, const KVQuantShapeGpu& shape) {
  const int sink = sink_pages(shape, n_pages), dense = n_pages - sink;
  const int wave = dense_launch(shape).warps * multiprocessor_count();
  return (sink > 0 ? 1 : 0) + std::max(1, std::min(dense, wave / std::max(1, streams)));
}

void decode_attention_kvquant_gpu(const KVQuantPagesGpu& pages, const float* queries, int n_queries, float scale, int splits,
                                  float* split_out, float* split_lse, float* out, float* lse, cudaStream_t stream) {
  require_kvquant_gpu(pages.shape);
  RINGKV_REQUIRE(splits >= 1 && pages.pages.streams >= 1, "decode_attention_kvquant_gpu: splits and streams must be positive");
  const TiledPages& tiled = pages.pages;
  const int sink = sink_pages(pages.shape, tiled.n_pages), dense = tiled.n_pages - sink;
  const bool in_place = dense > 0 && splits > (sink > 0 ? 1 : 0);
  with_code_bits(pages.shape.bits, "decode_attention_kvquant_gpu", [&](auto bits) {
    constexpr int kBits = decltype(bits)::value;
    const kernels::KVQuantReader<kBits> reader{pages.shape, pages.key_levels, pages.value_levels};
    if (!in_place) {
      decode_attention_tiled_splits(reader, tiled, (tiled.n_pages + splits - 1) / splits, splits, queries, n_queries, scale, split_out,
                                    split_lse, stream);
      return;
    }
    if (sink > 0)  // split 0: the pages with sink rows
      decode_attention_tiled_splits(reader, tiled, sink, 1, queries, n_queries, scale, split_out, split_lse, stream);
    const int first_split = sink > 0 ? 1 : 0, dense_splits = splits - first_split;
    const kernels::KVQuantDenseParams params{tiled.key_pages,
                                             tiled.value_pages,
                                             pages.key_levels,
                                             pages.value_levels,
                                             tiled.inv_freq,
                                             tiled.n_pages,
                                             sink,
                                             (dense + dense_splits - 1) / dense_splits,
                                             dense_splits,
                                             tiled.streams,
                                             outliers_per_vector(pages.shape)};
    const DenseLaunch launch = dense_launch(pages.shape);
    const size_t offset = static_cast<size_t>(first_split) * tiled.streams * n_queries;
    const int blocks = (dense_splits * tiled.streams + launch.warps - 1) / launch.warps;
    with_queries_per_kv_head(n_queries, "decode_attention_kvquant_gpu", [&](auto nq) {
      constexpr int kNq = decltype(nq)::value;
      const auto pick = [&](auto tables) {
        constexpr bool kTables = decltype(tables)::value;
        return pages.shape.pre_rope ? configured_dense_kernel<kBits, kNq, true, kTables>()
                                    : configured_dense_kernel<kBits, kNq, false, kTables>();
      };
      // 3-bit codes (which straddle words) always read through tables.
      const auto kernel = reads_level_pairs(pages.shape) ? pick(std::true_type{}) : pick(std::bool_constant<kBits == 3>{});
      kernel<<<blocks, 32 * launch.warps, launch.shared, stream>>>(params, queries, scale, split_out + offset * 128,
                                                                   split_lse + offset);
    });
  });
  RINGKV_CHECK_CUDA(cudaGetLastError());
  merge_splits_and_tails_gpu(splits, tiled.tails, tiled.streams, queries, n_queries, 128, scale, split_out, split_lse, out, lse, stream);
}

}  // namespace ringkv
