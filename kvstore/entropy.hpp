#pragma once
// The Coupled Quantization entropy analysis: how the joint entropy of c channels grows against the
// sum of their marginal entropies. Each channel is binned uniformly between its min and max; the
// entropies are plug-in estimates on those bins. The plug-in joint entropy is biased low when the
// joint bins approach the number of samples (it never exceeds log2(samples)), so a joint entropy
// below the sum of marginals is coupling only as far as it is also below `shuffled_joint_bits`, the
// same estimate on data with the same marginals and no coupling.
#include <cstddef>
#include <span>
#include <vector>

namespace ringkv {

struct GroupEntropy {
  int group_size = 0;
  double joint_bits = 0;           // mean over groups of the joint entropy of the group's channels
  double marginal_sum_bits = 0;    // mean over groups of the sum of its channels' entropies
  double shuffled_joint_bits = 0;  // joint_bits after shuffling each channel's samples independently
  int groups = 0;
  size_t samples = 0;
};

// rows: [n][head_dim], finite; contiguous channel groups of each size in group_sizes (1..8, dividing
// head_dim); bins: 2..256 per channel.
std::vector<GroupEntropy> coupled_entropy(const float* rows, size_t n, int head_dim, std::span<const int> group_sizes,
                                          int bins = 16);

}  // namespace ringkv
