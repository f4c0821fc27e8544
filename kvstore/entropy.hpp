#pragma once
// The Coupled Quantization entropy analysis: how the joint entropy of c channels grows against the
// sum of their marginal entropies. Each channel is binned uniformly between its min and max; the
// entropies are plug-in estimates on those bins (biased low when the joint bins outnumber the
// samples, which `samples` lets a reader judge).
#include <cstddef>
#include <span>
#include <vector>

namespace ringkv {

struct GroupEntropy {
  int group_size = 0;
  double joint_bits = 0;         // mean over groups of the joint entropy of the group's channels
  double marginal_sum_bits = 0;  // mean over groups of the sum of its channels' entropies
  int groups = 0;
  size_t samples = 0;
};

// rows: [n][head_dim]; contiguous channel groups of each size in group_sizes (sizes must divide head_dim).
std::vector<GroupEntropy> coupled_entropy(const float* rows, size_t n, int head_dim, std::span<const int> group_sizes,
                                          int bins = 16);

}  // namespace ringkv
