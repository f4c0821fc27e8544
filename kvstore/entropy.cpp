#include "kvstore/entropy.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/error.hpp"

namespace ringkv {

namespace {
// Plug-in entropy in bits of the values in `keys` (sorted in place).
double entropy_bits(std::vector<uint64_t>& keys) {
  std::sort(keys.begin(), keys.end());
  const double n = static_cast<double>(keys.size());
  double h = 0;
  for (size_t i = 0; i < keys.size();) {
    size_t j = i;
    while (j < keys.size() && keys[j] == keys[i]) ++j;
    const double p = (j - i) / n;
    h -= p * std::log2(p);
    i = j;
  }
  return h;
}
}  // namespace

std::vector<GroupEntropy> coupled_entropy(const float* rows, size_t n, int head_dim, std::span<const int> group_sizes,
                                          int bins) {
  RINGKV_REQUIRE(n > 0 && bins >= 2 && bins <= 256, "entropy analysis needs samples and 2..256 bins");
  // Bin index of every element, per channel range.
  std::vector<uint8_t> bin(n * head_dim);
  for (int c = 0; c < head_dim; ++c) {
    float lo = rows[c], hi = rows[c];
    for (size_t t = 0; t < n; ++t) lo = std::min(lo, rows[t * head_dim + c]), hi = std::max(hi, rows[t * head_dim + c]);
    const float width = (hi - lo) / bins;
    for (size_t t = 0; t < n; ++t) {
      const int b = width > 0 ? static_cast<int>((rows[t * head_dim + c] - lo) / width) : 0;
      bin[t * head_dim + c] = static_cast<uint8_t>(std::clamp(b, 0, bins - 1));
    }
  }
  std::vector<double> marginal(head_dim);
#pragma omp parallel for schedule(dynamic)
  for (int c = 0; c < head_dim; ++c) {
    std::vector<uint64_t> keys(n);
    for (size_t t = 0; t < n; ++t) keys[t] = bin[t * head_dim + c];
    marginal[c] = entropy_bits(keys);
  }
  std::vector<GroupEntropy> out;
  for (int size : group_sizes) {
    RINGKV_REQUIRE(size > 0 && head_dim % size == 0 && size <= 8,
                   "group size " + std::to_string(size) + " must divide head_dim and be at most 8");
    const int groups = head_dim / size;
    std::vector<double> joint(groups), sum(groups);
#pragma omp parallel for schedule(dynamic)
    for (int g = 0; g < groups; ++g) {
      std::vector<uint64_t> keys(n);
      for (size_t t = 0; t < n; ++t) {
        uint64_t k = 0;
        for (int j = 0; j < size; ++j) k = (k << 8) | bin[t * head_dim + g * size + j];
        keys[t] = k;
      }
      joint[g] = entropy_bits(keys);
      for (int j = 0; j < size; ++j) sum[g] += marginal[g * size + j];
    }
    GroupEntropy e;
    e.group_size = size;
    e.groups = groups;
    e.samples = n;
    for (int g = 0; g < groups; ++g) e.joint_bits += joint[g] / groups, e.marginal_sum_bits += sum[g] / groups;
    out.push_back(e);
  }
  return out;
}

}  // namespace ringkv
