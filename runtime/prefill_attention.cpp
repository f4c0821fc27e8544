#include "runtime/prefill_attention.hpp"

#include <algorithm>
#include <cmath>
#include <omp.h>

#include "kernels/error.hpp"

namespace ringkv {

namespace {
float dot(const float* a, const float* b, int n) {
  float acc = 0;
#pragma omp simd reduction(+ : acc)
  for (int i = 0; i < n; ++i) acc += a[i] * b[i];
  return acc;
}

void axpy(float a, const float* x, float* y, int n) {
#pragma omp simd
  for (int i = 0; i < n; ++i) y[i] += a * x[i];
}
}  // namespace

void prefill_attention(const KVShard& kv, int layer, int kv_head, const PrefillChunk& chunk, const TailBeforeChunk& tail,
                       const float* queries, int group, float scale, float* out, std::vector<double>* received) {
  const int d = kv.config().head_dim, page = kv.config().page_size, n = chunk.tokens, p0 = chunk.first_position;
  std::vector<float> cached_keys, cached_values;
  std::vector<int> positions;
  kv.decode_all(layer, kv_head, cached_keys, cached_values, positions);
  RINGKV_REQUIRE(std::is_sorted(positions.begin(), positions.end()),
                 "prefill needs the shard's positions in order (one contiguous sequence per shard)");

  // The rows of the pages still open while the chunk ran, as the tail held them.
  const int tail_tokens = static_cast<int>(tail.keys_post_rope.size()) / d;
  RINGKV_REQUIRE(tail.first_position < 0 || tail.first_position + tail_tokens == p0,
                 "prefill chunk at position " + std::to_string(p0) + " does not continue the shard's tail");
  const int local_first = tail.first_position < 0 ? p0 : tail.first_position;
  std::vector<float> local_keys(tail.keys_post_rope), local_values(tail.values);
  local_keys.resize(static_cast<size_t>(tail_tokens + n) * d);
  local_values.resize(local_keys.size());
  kv.tail_form(layer, kv_head, chunk.keys_pre_rope, chunk.values, n, p0, local_keys.data() + static_cast<size_t>(tail_tokens) * d,
               local_values.data() + static_cast<size_t>(tail_tokens) * d);

  const int span = p0 + n;  // positions a query may see are below this
  const int threads = omp_get_max_threads();
  std::vector<std::vector<double>> thread_received(received ? threads : 0, std::vector<double>(received ? span : 0));
#pragma omp parallel
  {
    std::vector<float> scores;
    std::vector<double>* mine = received ? &thread_received[omp_get_thread_num()] : nullptr;
#pragma omp for schedule(dynamic, 4)
    for (int item = 0; item < n * group; ++item) {
      const int i = item / group, p = p0 + i;
      const float* q = queries + static_cast<size_t>(item) * d;
      // The cache right after p was appended: p's page is open (tail form) unless p filled it.
      int page_start = local_first + (p - local_first) / page * page;
      if (p - page_start + 1 == page) page_start = p + 1;
      const int n_cached = static_cast<int>(std::lower_bound(positions.begin(), positions.end(), page_start) - positions.begin());
      const int n_local = p - page_start + 1;
      const float* own_keys = local_keys.data() + static_cast<size_t>(page_start - local_first) * d;
      const float* own_values = local_values.data() + static_cast<size_t>(page_start - local_first) * d;
      scores.resize(static_cast<size_t>(n_cached + n_local));
      float top = -INFINITY;
      for (int j = 0; j < n_cached; ++j) top = std::max(top, scores[j] = scale * dot(q, cached_keys.data() + static_cast<size_t>(j) * d, d));
      for (int j = 0; j < n_local; ++j)
        top = std::max(top, scores[n_cached + j] = scale * dot(q, own_keys + static_cast<size_t>(j) * d, d));
      double sum = 0;
      for (float& s : scores) sum += (s = std::exp(s - top));
      const float inv = static_cast<float>(1.0 / sum);
      float* o = out + static_cast<size_t>(item) * d;
      std::fill(o, o + d, 0.f);
      for (int j = 0; j < n_cached; ++j) axpy(scores[j] * inv, cached_values.data() + static_cast<size_t>(j) * d, o, d);
      for (int j = 0; j < n_local; ++j) axpy(scores[n_cached + j] * inv, own_values + static_cast<size_t>(j) * d, o, d);
      if (mine) {
        for (int j = 0; j < n_cached; ++j) (*mine)[positions[j]] += scores[j] * inv;
        for (int j = 0; j < n_local; ++j) (*mine)[page_start + j] += scores[n_cached + j] * inv;
      }
    }
  }
  if (received) {
    if (received->size() < static_cast<size_t>(span)) received->resize(span);
    for (const auto& t : thread_received)
      for (int j = 0; j < span; ++j) (*received)[j] += t[j];
  }
}

}  // namespace ringkv
