#pragma once
// Rotary position embedding in the Hugging Face "rotate half" layout: channel i pairs with
// channel i + head_dim/2, rotated by angle position * inv_freq[i].
#include <vector>

namespace ringkv {

struct RopeTable {
  int head_dim = 0;
  std::vector<float> inv_freq;  // [head_dim / 2]

  // Plain RoPE with base theta; the model runtime builds scaled variants from its config.
  static RopeTable plain(int head_dim, double theta);
};

// Rotates one head vector in place to absolute position `position`.
void apply_rope(float* vec, int position, const RopeTable& rope);
// Undoes apply_rope (rotation by -position).
void apply_inverse_rope(float* vec, int position, const RopeTable& rope);
// Rotates `rows` consecutive head vectors starting at position first_position.
void apply_rope_rows(float* rows, int n_rows, int first_position, const RopeTable& rope);

}  // namespace ringkv
