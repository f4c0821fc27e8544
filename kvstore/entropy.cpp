#include "kvstore/entropy.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>

#include "kernels/error.hpp"

namespace ringkv {

namespace {

// Bin index of every element, channel-major ([head_dim][n]): equal-width bins between the channel's
// min and max, computed in double so that extreme ranges do not overflow.
std::vector<uint8_t> bin_channels(const float* rows, size_t n, int head_dim, int bins) {
  std::vector<uint8_t> bin(n * head_dim);
  int non_finite_channel = -1;
#pragma omp parallel for schedule(static) reduction(max : non_finite_channel)
  for (int c = 0; c < head_dim; ++c) {
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    bool finite = true;
    for (size_t t = 0; t < n; ++t) {
      const double x = rows[t * head_dim + c];
      finite = finite && std::isfinite(x);
      lo = std::min(lo, x), hi = std::max(hi, x);
    }
    if (!finite) {
      non_finite_channel = c;
      continue;
    }
    const double width = (hi - lo) / bins;
    uint8_t* out = bin.data() + c * n;
    for (size_t t = 0; t < n; ++t) {
      const int b = width > 0 ? static_cast<int>((rows[t * head_dim + c] - lo) / width) : 0;
      out[t] = static_cast<uint8_t>(std::min(b, bins - 1));
    }
  }
  RINGKV_REQUIRE(non_finite_channel < 0,
                 "entropy analysis: channel " + std::to_string(non_finite_channel) + " holds a NaN or infinite value");
  return bin;
}

// The same bins with every channel's samples permuted independently: each channel's histogram stays,
// any dependence between channels goes. Fixed seeds keep results equal across runs and ranks.
std::vector<uint8_t> shuffle_channels(const std::vector<uint8_t>& bin, size_t n, int head_dim) {
  std::vector<uint8_t> shuffled(bin);
#pragma omp parallel for schedule(static)
  for (int c = 0; c < head_dim; ++c) {
    std::mt19937_64 rng(0x5eedull + static_cast<uint64_t>(c));
    uint8_t* b = shuffled.data() + c * n;
    for (size_t i = n - 1; i > 0; --i) std::swap(b[i], b[rng() % (i + 1)]);
  }
  return shuffled;
}

// Plug-in entropy in bits of the values in `keys` (sorted in place).
double entropy_bits(std::vector<uint64_t>& keys) {
  std::sort(keys.begin(), keys.end());
  const double n = static_cast<double>(keys.size());
  double h = 0;
  for (size_t i = 0; i < keys.size();) {
    size_t j = i;
    while (j < keys.size() && keys[j] == keys[i]) ++j;
    const double p = static_cast<double>(j - i) / n;
    h -= p * std::log2(p);
    i = j;
  }
  return h;
}

// Joint entropy of channels [first, first + size): one 8-bit bin index per channel in a 64-bit key.
double joint_entropy_bits(const std::vector<uint8_t>& bin, size_t n, int first, int size) {
  std::vector<uint64_t> keys(n, 0);
  for (int j = 0; j < size; ++j) {
    const uint8_t* b = bin.data() + static_cast<size_t>(first + j) * n;
    for (size_t t = 0; t < n; ++t) keys[t] = keys[t] << 8 | b[t];
  }
  return entropy_bits(keys);
}

}  // namespace

std::vector<GroupEntropy> coupled_entropy(const float* rows, size_t n, int head_dim, std::span<const int> group_sizes,
                                          int bins) {
  RINGKV_REQUIRE(n > 0 && head_dim > 0 && bins >= 2 && bins <= 256,
                 "entropy analysis needs samples, a positive head_dim and 2..256 bins");
  for (int size : group_sizes)
    RINGKV_REQUIRE(size > 0 && size <= 8 && head_dim % size == 0,
                   "entropy analysis: group size " + std::to_string(size) + " must divide head_dim " +
                       std::to_string(head_dim) + " and be 1..8");
  const std::vector<uint8_t> bin = bin_channels(rows, n, head_dim, bins);
  const std::vector<uint8_t> shuffled = shuffle_channels(bin, n, head_dim);
  std::vector<double> marginal(head_dim);
#pragma omp parallel for schedule(dynamic)
  for (int c = 0; c < head_dim; ++c) marginal[c] = joint_entropy_bits(bin, n, c, 1);

  std::vector<GroupEntropy> out;
  for (int size : group_sizes) {
    const int groups = head_dim / size;
    std::vector<double> joint(groups), shuffled_joint(groups);
#pragma omp parallel for schedule(dynamic)
    for (int g = 0; g < groups; ++g) {
      joint[g] = joint_entropy_bits(bin, n, g * size, size);
      shuffled_joint[g] = joint_entropy_bits(shuffled, n, g * size, size);
    }
    GroupEntropy e;
    e.group_size = size;
    e.groups = groups;
    e.samples = n;
    for (int g = 0; g < groups; ++g) {
      e.joint_bits += joint[g] / groups;
      e.shuffled_joint_bits += shuffled_joint[g] / groups;
    }
    for (int c = 0; c < head_dim; ++c) e.marginal_sum_bits += marginal[c] / groups;
    out.push_back(e);
  }
  return out;
}

}  // namespace ringkv
