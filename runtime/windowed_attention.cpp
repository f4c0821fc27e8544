#include "runtime/windowed_attention.hpp"

#include <algorithm>
#include <cmath>
#include <omp.h>

#include "kernels/error.hpp"

namespace ringkv {

namespace {
// The row range [first, last) a token's window covers.
std::pair<size_t, size_t> window_rows(const KVRows& rows, int lo, int hi) {
  const auto b = std::lower_bound(rows.positions.begin(), rows.positions.end(), lo);
  const auto e = std::lower_bound(b, rows.positions.end(), hi);
  return {static_cast<size_t>(b - rows.positions.begin()), static_cast<size_t>(e - rows.positions.begin())};
}

int head_dim_of(const KVRows& rows, const PreciseStates& states) {
  RINGKV_REQUIRE(rows.keys.size() == rows.size() * states.head_dim && rows.values.size() == rows.keys.size(),
                 "attention rows do not match the head dimension");
  return states.head_dim;
}
}  // namespace

PreciseStates::PreciseStates(int n, int dim)
    : queries(n), head_dim(dim), out(static_cast<size_t>(n) * dim, 0.0), lse(n, -INFINITY) {}

void attend_windows(const KVRows& rows, const QueryWindows& q, float scale, PreciseStates& states) {
  const int d = head_dim_of(rows, states);
  RINGKV_REQUIRE(states.queries == q.tokens * q.group, "attention states do not match the queries");
  if (rows.size() == 0) return;
#pragma omp parallel
  {
    std::vector<double> scores, out(d);
#pragma omp for schedule(dynamic, 4)
    for (int item = 0; item < q.tokens * q.group; ++item) {
      const int token = item / q.group;
      const auto [first, last] = window_rows(rows, q.lo[token], q.hi[token]);
      if (first == last) continue;
      const float* query = q.queries + static_cast<size_t>(item) * d;
      scores.resize(last - first);
      double top = -INFINITY;
      for (size_t j = first; j < last; ++j)
        top = std::max(top, scores[j - first] = static_cast<double>(scale * dot(query, &rows.keys[j * d], d)));
      double sum = 0;
      std::fill(out.begin(), out.end(), 0.0);
      for (size_t j = first; j < last; ++j) {
        const double w = std::exp(scores[j - first] - top);
        sum += w;
        const float* value = &rows.values[j * d];
#pragma omp simd
        for (int c = 0; c < d; ++c) out[c] += w * value[c];
      }
      // Merge (out / sum, top + log sum) into this query's state; each item is one thread's.
      double* acc = &states.out[static_cast<size_t>(item) * d];
      double& acc_lse = states.lse[item];
      const double lse = top + std::log(sum), m = std::max(acc_lse, lse);
      const double wa = std::exp(acc_lse - m), wb = std::exp(lse - m) / sum, total = wa + wb * sum;
      for (int c = 0; c < d; ++c) acc[c] = (acc[c] * wa + out[c] * wb) / total;
      acc_lse = m + std::log(total);
    }
  }
}

void add_received_attention(const KVRows& rows, const QueryWindows& q, float scale, const std::vector<double>& final_lse,
                            std::vector<double>& received) {
  if (rows.size() == 0) return;
  const int d = static_cast<int>(rows.keys.size() / rows.size());
  RINGKV_REQUIRE(received.size() > static_cast<size_t>(rows.positions.back()), "received attention does not cover the rows");
  const int threads = omp_get_max_threads();
  std::vector<std::vector<double>> per_thread(threads, std::vector<double>(received.size()));
#pragma omp parallel
  {
    std::vector<double>& mine = per_thread[omp_get_thread_num()];
#pragma omp for schedule(dynamic, 4)
    for (int item = 0; item < q.tokens * q.group; ++item) {
      const int token = item / q.group;
      const auto [first, last] = window_rows(rows, q.lo[token], q.hi[token]);
      const float* query = q.queries + static_cast<size_t>(item) * d;
      for (size_t j = first; j < last; ++j)
        mine[rows.positions[j]] += std::exp(static_cast<double>(scale * dot(query, &rows.keys[j * d], d)) - final_lse[item]);
    }
  }
  for (const auto& t : per_thread)
    for (size_t j = 0; j < received.size(); ++j) received[j] += t[j];
}

}  // namespace ringkv
