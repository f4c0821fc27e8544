#pragma once
// The compile-time variants the GPU kernels are built for, chosen at run time: f is called with
// the value as a std::integral_constant, or the call fails naming `what` and the variants compiled.
#include <string>
#include <type_traits>

#include "kernels/error.hpp"

namespace ringkv {

// Code widths of 1 to 4 bits.
template <typename F>
void with_code_bits(int bits, const char* what, F&& f) {
  switch (bits) {
    case 1: f(std::integral_constant<int, 1>{}); break;
    case 2: f(std::integral_constant<int, 2>{}); break;
    case 3: f(std::integral_constant<int, 3>{}); break;
    case 4: f(std::integral_constant<int, 4>{}); break;
    default: fail(std::string(what) + ": " + std::to_string(bits) + "-bit codes are not compiled (1 to 4)", __FILE__, __LINE__);
  }
}

// Query heads per KV head (the GQA group) of 1, 2, 4 or 8.
template <typename F>
void with_queries_per_kv_head(int n_queries, const char* what, F&& f) {
  switch (n_queries) {
    case 1: f(std::integral_constant<int, 1>{}); break;
    case 2: f(std::integral_constant<int, 2>{}); break;
    case 4: f(std::integral_constant<int, 4>{}); break;
    case 8: f(std::integral_constant<int, 8>{}); break;
    default:
      fail(std::string(what) + ": " + std::to_string(n_queries) + " queries per KV head (1, 2, 4 or 8 are compiled)", __FILE__,
           __LINE__);
  }
}

}  // namespace ringkv
