#pragma once
// The compile-time variants the GPU kernels are built for, chosen at run time: f is called with
// the value as a std::integral_constant, or the call fails naming `what` and the variants compiled.
#include <string>
#include <type_traits>

#include "kernels/error.hpp"

namespace ringkv {

// f(value) for value one of VALUES; else fails: "what: <value><unit> are not compiled (<compiled>)".
template <int... VALUES, typename F>
void with_compiled(int value, const std::string& what, const char* unit, const char* compiled, F&& f) {
  const bool found = ((value == VALUES ? (f(std::integral_constant<int, VALUES>{}), true) : false) || ...);
  if (!found) fail(what + ": " + std::to_string(value) + unit + " are not compiled (" + compiled + ")", __FILE__, __LINE__);
}

// Code widths of 1 to 4 bits.
template <typename F>
void with_code_bits(int bits, const char* what, F&& f) {
  with_compiled<1, 2, 3, 4>(bits, what, "-bit codes", "1 to 4", f);
}

// Query heads per KV head (the GQA group) of 1, 2, 4 or 8.
template <typename F>
void with_queries_per_kv_head(int n_queries, const char* what, F&& f) {
  with_compiled<1, 2, 4, 8>(n_queries, what, " queries per KV head", "1, 2, 4 or 8", f);
}

// Channels per vector-quantized group of a CQ page: the powers of two to 64.
template <typename F>
void with_coupled_channels(int channels, const char* what, F&& f) {
  with_compiled<1, 2, 4, 8, 16, 32, 64>(channels, what, " channels per group", "powers of two to 64", f);
}

// Channels per group of an RVQ page: 2, 4, 8 or 16.
template <typename F>
void with_residual_group(int group, const char* what, F&& f) {
  with_compiled<2, 4, 8, 16>(group, what, " channels per group", "2, 4, 8 or 16", f);
}

}  // namespace ringkv
