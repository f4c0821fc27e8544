#pragma once
// RVQ pages on the GPU, in the byte layout of kvstore/codec_residual.cpp (head_dim 128, pages of 128
// tokens): per token its fp16 scale (standard deviation), then the codes of every (token, channel
// group, codebook) in that order, ceil(log2(codes)) bits each, LSB-first. Keys take strided channel
// groups (group g holds channels g, g + groups, ...), values contiguous ones. What encoding,
// decoding to bf16 and decode attention share: the group layout, a walk through a token's codes, and the reader of the
// tiled kernels (kernels/tiled_pages.cuh).
#include <cstring>
#include <type_traits>

#include "kernels/compiled_variants.hpp"
#include "kernels/page_tile.cuh"
#include "kernels/residual_pages_gpu.hpp"

namespace ringkv::kernels {

// Channel of slot j of channel group g.
__device__ inline int residual_channel(bool keys, int groups, int group, int g, int j) {
  return keys ? g + j * groups : g * group + j;
}

// ceil(log2(codes)) bits per code.
inline int residual_code_bits(const ResidualShapeGpu& shape) {
  int bits = 1;
  while ((1 << bits) < shape.codes) ++bits;
  return bits;
}

// A thread's walk through consecutive codes of a page, its 32-bit words read as they are needed (a
// page's codes, 128 tokens' worth, fill whole words, so no walk reads past them).
class CodeWalk {
 public:
  __device__ CodeWalk(const uint8_t* codes, int index, int bits) : bits_(bits) {
    const int bit = index * bits;
    word_ = reinterpret_cast<const uint32_t*>(codes) + (bit >> 5);
    held_ = 32 - (bit & 31);
    buffer_ = __ldg(word_++) >> (bit & 31);
  }
  __device__ uint32_t next() {
    if (held_ < bits_) buffer_ |= static_cast<uint64_t>(__ldg(word_++)) << held_, held_ += 32;
    const uint32_t code = static_cast<uint32_t>(buffer_) & ((1u << bits_) - 1u);
    buffer_ >>= bits_, held_ -= bits_;
    return code;
  }

 private:
  const uint32_t* word_;
  uint64_t buffer_;
  int held_, bits_;
};

// The sum of a channel group's entries over its codebook levels: fp16 pairs for attention (its tile
// is fp16, and a level's entry is one 4- to 32-byte read), fp32 in the CPU's order for decoding.
template <int GROUP, typename Entry>
struct EntrySum;

template <int GROUP>
struct EntrySum<GROUP, __half> {
  static constexpr int kWords = GROUP / 2;
  __half2 v[kWords];
  __device__ void add_levels(const __half* book, int codes, int depth, CodeWalk& walk) {
#pragma unroll
    for (int k = 0; k < kWords; ++k) v[k] = __float2half2_rn(0.f);
    for (int l = 0; l < depth; ++l) {
      const __half* entry = book + (static_cast<size_t>(l) * codes + walk.next()) * GROUP;
      if constexpr (kWords % 4 == 0) {
#pragma unroll
        for (int k = 0; k < kWords; k += 4) {
          const uint4 x = *reinterpret_cast<const uint4*>(entry + 2 * k);
          v[k] = __hadd2(v[k], bits_half2(x.x)), v[k + 1] = __hadd2(v[k + 1], bits_half2(x.y));
          v[k + 2] = __hadd2(v[k + 2], bits_half2(x.z)), v[k + 3] = __hadd2(v[k + 3], bits_half2(x.w));
        }
      } else if constexpr (kWords == 2) {
        const uint2 x = *reinterpret_cast<const uint2*>(entry);
        v[0] = __hadd2(v[0], bits_half2(x.x)), v[1] = __hadd2(v[1], bits_half2(x.y));
      } else {
        v[0] = __hadd2(v[0], *reinterpret_cast<const __half2*>(entry));
      }
    }
  }
  __device__ static __half2 bits_half2(uint32_t x) {
    __half2 h;
    memcpy(&h, &x, sizeof h);
    return h;
  }
  // Slot j of this sum with slot j of `other`, as one fp16 pair.
  __device__ __half2 pair(const EntrySum& other, int j) const {
    return j % 2 == 0 ? __lows2half2(v[j / 2], other.v[j / 2]) : __highs2half2(v[j / 2], other.v[j / 2]);
  }
};

template <int GROUP>
struct EntrySum<GROUP, float> {
  float v[GROUP];
  __device__ void add_levels(const float* book, int codes, int depth, CodeWalk& walk) {
#pragma unroll
    for (int j = 0; j < GROUP; ++j) v[j] = 0.f;
    for (int l = 0; l < depth; ++l) {
      const float* entry = book + (static_cast<size_t>(l) * codes + walk.next()) * GROUP;
#pragma unroll
      for (int j = 0; j < GROUP; ++j) v[j] += entry[j];
    }
  }
};

// How the tiled kernels read RVQ pages: each stream's codebook stacks into shared memory once (both
// roles in fp16 for attention; one role in fp32, value_codebooks null, for decoding to bf16 rows as
// ResidualCodec::decode_rows gives them), then per page each thread sums the codebook entries of
// two runs of codes at a time, whose results share the tile's words: for keys, channel groups 2n and
// 2n + 1 of token t (channels 2n + groups j and the next); for values, a channel group of tokens 2i
// and 2i + 1 (a channel's two tokens), thread t taking token pair t % 64 and half the groups.
template <int GROUP, typename Entry>
struct ResidualReader {
  static_assert(GROUP >= 2 && GROUP % 2 == 0, "RVQ channel groups of an even width");
  ResidualShapeGpu shape;
  const float* const* key_codebooks;    // device array [tables] of device pointers to [depth][codes][GROUP]
  const float* const* value_codebooks;  // the same for values; null: one role, key_codebooks
  int code_bits;

  __host__ __device__ int roles() const { return value_codebooks ? 2 : 1; }
  __host__ __device__ size_t book_entries() const { return static_cast<size_t>(shape.depth) * shape.codes * GROUP; }
  // Entries from one role's stack to the next's: whole 16-byte lines, so every entry read is aligned.
  __host__ __device__ size_t role_stride() const {
    constexpr size_t kLine = 16 / sizeof(Entry);
    return (book_entries() + kLine - 1) / kLine * kLine;
  }
  size_t shared_bytes() const { return roles() * role_stride() * sizeof(Entry); }
  __device__ bool pre_rope() const { return shape.pre_rope; }
  // No synchronization: the first read begins with one.
  __device__ void start(int table, unsigned char* shared) const {
    Entry* books = reinterpret_cast<Entry*>(shared);
    const size_t n = book_entries();
    for (size_t i = threadIdx.x; i < n; i += blockDim.x) {
      books[i] = static_cast<Entry>(key_codebooks[table][i]);
      if (value_codebooks) books[role_stride() + i] = static_cast<Entry>(value_codebooks[table][i]);
    }
  }
  // The page into the tile: synchronizes the block before writing the tile, and at the end.
  template <typename Tile>
  __device__ void read(const uint8_t* __restrict__ page, int /*position*/, bool keys, unsigned char* shared, const Tile& tile) const {
    constexpr int kGroups = kTileDim / GROUP, kRuns = kGroups / 2, kPairs = kTileDim / 2;
    __syncthreads();
    const Entry* book = reinterpret_cast<const Entry*>(shared) + (keys || roles() == 1 ? 0 : role_stride());
    const int t = threadIdx.x, token_a = keys ? t : 2 * (t % kPairs), token_b = keys ? t : token_a + 1;
    const int group0 = keys ? 0 : t / kPairs * kRuns;
    const __half* scales = reinterpret_cast<const __half*>(page);
    const __half2 scale = __halves2half2(scales[token_a], scales[token_b]);  // their standard deviations
    const uint8_t* codes = page + 2 * kTileDim;
    // Keys: one walk through the token's codes, group after group. Values: one walk per token.
    CodeWalk walk_a(codes, (token_a * kGroups + group0) * shape.depth, code_bits),
        walk_b(codes, (token_b * kGroups + group0) * shape.depth, code_bits);
    for (int n = 0; n < kRuns; ++n) {
      EntrySum<GROUP, Entry> a, b;
      a.add_levels(book, shape.codes, shape.depth, walk_a);
      if (keys)
        b.add_levels(book, shape.codes, shape.depth, walk_a);
      else
        b.add_levels(book, shape.codes, shape.depth, walk_b);
      const int group_a = keys ? 2 * n : group0 + n, group_b = keys ? group_a + 1 : group_a;
#pragma unroll
      for (int j = 0; j < GROUP; ++j) {
        // Keys: channels c and c + 1 of one token; values: channel c of two tokens.
        const int c = residual_channel(keys, kGroups, GROUP, group_a, j);
        if constexpr (std::is_same_v<Entry, __half>) {
          const __half2 x = __hmul2(a.pair(b, j), scale);
          if (keys)
            tile.put_word(t, c / 2, x);
          else
            tile.put_word(c, token_a / 2, x);
        } else {
          tile.put(token_a, c, a.v[j] * __low2float(scale));
          tile.put(token_b, residual_channel(keys, kGroups, GROUP, group_b, j), b.v[j] * __high2float(scale));
        }
      }
    }
    __syncthreads();
  }
};

}  // namespace ringkv::kernels
