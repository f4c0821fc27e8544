#pragma once
// Causal prefill attention of a chunk of queries over bf16 keys and values, returning (out, lse)
// so that chunks and ring steps merge. Query i is at position q_offset + i, key j at position j;
// a query sees the keys at or before its position. Grouped-query attention: query head h reads
// KV head h / (heads / kv_heads). Scores are scale * q.k. This is the CPU twin of the GPU kernel.
#include <cstdint>

#include "kernels/host_device.hpp"

namespace ringkv {

// Which keys a query sees besides the causal bound. A paged store's view during prefill takes two
// calls: a query sees its own page as computed (bf16 rows, kOpenPage) and the pages below as stored
// (decoded codes, kSealedPages), except the last query of a page, which sees its page stored too
// (the page is sealed before that query attends, as in a decode step). The second call merges into
// the first's (out, lse) when `accumulate` is set.
enum class PrefillView : int { kCausal = 0, kSealedPages = 1, kOpenPage = 2 };

struct PrefillShape {
  int n_queries = 0, n_keys = 0, q_offset = 0;
  int heads = 1, kv_heads = 1, head_dim = 128;
  float scale = 1;
  PrefillView view = PrefillView::kCausal;
  int page = 0;             // tokens per page, for the paged views
  bool accumulate = false;  // merge into the (out, lse) already in the outputs
};

// The page start of a position (the position itself outside the paged views).
RINGKV_HOST_DEVICE inline int prefill_page_start(const PrefillShape& s, int position) {
  return s.view == PrefillView::kCausal ? position : position - position % s.page;
}

// Whether the query at `position` sees key `key`.
RINGKV_HOST_DEVICE inline bool prefill_sees(const PrefillShape& s, int position, int key) {
  if (key >= s.n_keys || key > position) return false;
  if (s.view == PrefillView::kCausal) return true;
  const int start = prefill_page_start(s, position);
  const bool sealed = position - start == s.page - 1;
  return s.view == PrefillView::kSealedPages ? key < start || sealed : key >= start && !sealed;
}

// q: bf16 [n_queries][heads][head_dim]; k, v: bf16 [n_keys][kv_heads][head_dim]; out: fp32
// [n_queries][heads][head_dim]; lse: fp32 [n_queries][heads] (-inf where a query sees no key).
// Paged views need page > 0; merging uses the log-sum-exp of the two states.
void prefill_attention_cpu(const PrefillShape& s, const uint16_t* q, const uint16_t* k, const uint16_t* v, float* out,
                           float* lse);

}  // namespace ringkv
