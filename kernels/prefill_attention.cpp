#include "kernels/prefill_attention.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/half.hpp"

namespace ringkv {

void prefill_attention_cpu(const PrefillShape& s, const uint16_t* q, const uint16_t* k, const uint16_t* v, float* out,
                           float* lse) {
  const int d = s.head_dim, group = s.heads / s.kv_heads;
#pragma omp parallel for collapse(2) schedule(dynamic, 8)
  for (int i = 0; i < s.n_queries; ++i)
    for (int h = 0; h < s.heads; ++h) {
      const uint16_t* qi = q + (static_cast<size_t>(i) * s.heads + h) * d;
      const int kh = h / group, position = s.q_offset + i, visible = std::min(s.n_keys, position + 1);
      std::vector<double> scores(std::max(visible, 0)), acc(d, 0.0);
      double top = -INFINITY;
      for (int j = 0; j < visible; ++j) {
        if (!prefill_sees(s, position, j)) continue;
        const uint16_t* kj = k + (static_cast<size_t>(j) * s.kv_heads + kh) * d;
        double dot = 0;
        for (int c = 0; c < d; ++c) dot += static_cast<double>(bf16_to_float(qi[c])) * bf16_to_float(kj[c]);
        top = std::max(top, scores[j] = s.scale * dot);
      }
      double sum = 0;
      for (int j = 0; j < visible; ++j) {
        if (!prefill_sees(s, position, j)) continue;
        const double w = std::exp(scores[j] - top);
        sum += w;
        const uint16_t* vj = v + (static_cast<size_t>(j) * s.kv_heads + kh) * d;
        for (int c = 0; c < d; ++c) acc[c] += w * bf16_to_float(vj[c]);
      }
      float* o = out + (static_cast<size_t>(i) * s.heads + h) * d;
      float& l = lse[static_cast<size_t>(i) * s.heads + h];
      const double mine = sum > 0 ? top + std::log(sum) : -INFINITY;
      // Merging with the state already there: weights exp(lse - merged lse).
      const double prior = s.accumulate ? l : -INFINITY, merged = std::max(mine, prior);
      if (merged == -INFINITY) {
        std::fill_n(o, d, 0.0f);
        l = -INFINITY;
        continue;
      }
      const double total = std::exp(mine - merged) + std::exp(prior - merged), w_mine = std::exp(mine - merged) / total,
                   w_prior = std::exp(prior - merged) / total;
      for (int c = 0; c < d; ++c)
        o[c] = static_cast<float>((sum > 0 ? acc[c] / sum * w_mine : 0.0) + (prior > -INFINITY ? o[c] * w_prior : 0.0));
      l = static_cast<float>(merged + std::log(total));
    }
}

}  // namespace ringkv
