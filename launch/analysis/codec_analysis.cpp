#include "launch/analysis/codec_analysis.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <numeric>

#include "kernels/attention_state.hpp"
#include "kvstore/codec_learning.hpp"
#include "kvstore/kv_shard.hpp"

namespace ringkv {

namespace {

// Results of one codec on one (layer, head) stream, or their sum over streams; all doubles, so
// one all-gather carries them.
struct CodecSums {
  double stored_bytes = 0, stored_elements = 0, projected_bytes = 0, projected_elements = 0;
  double key_error = 0, value_error = 0, attention_error = 0, topk = 0, streams = 0, calibration_seconds = 0;
};
constexpr size_t kSumFields = sizeof(CodecSums) / sizeof(double);
static_assert(sizeof(CodecSums) == kSumFields * sizeof(double));

// Element-wise sum over ranks of per-stream results. Each stream is filled by one rank and is zero
// on the others, so the sum is exact and the result does not depend on the number of ranks.
template <class T>
std::vector<T> gather_streams(const std::vector<T>& mine, Communicator& comm, const char* what) {
  static_assert(sizeof(T) % sizeof(double) == 0);
  const auto gathered = comm.all_gather_bytes({reinterpret_cast<const uint8_t*>(mine.data()), mine.size() * sizeof(T)}, what);
  std::vector<T> total(mine.size());
  auto* t = reinterpret_cast<double*>(total.data());
  const size_t fields = mine.size() * sizeof(T) / sizeof(double);
  for (const auto& rank_bytes : gathered) {
    RINGKV_REQUIRE(rank_bytes.size() == mine.size() * sizeof(T), std::string(what) + ": ranks disagree on the work");
    std::vector<double> theirs(fields);
    std::memcpy(theirs.data(), rank_bytes.data(), rank_bytes.size());
    for (size_t f = 0; f < fields; ++f) t[f] += theirs[f];
  }
  return total;
}

void add_sums(CodecSums& into, const CodecSums& one) {
  auto* t = reinterpret_cast<double*>(&into);
  const auto* o = reinterpret_cast<const double*>(&one);
  for (size_t f = 0; f < kSumFields; ++f) t[f] += o[f];
}

std::vector<float> rotated(const float* rows, size_t n, int head_dim, const RopeTable& rope) {
  std::vector<float> out(rows, rows + n * head_dim);
  apply_rope_rows(out.data(), static_cast<int>(n), 0, rope);
  return out;
}

double relative_error(const float* got, const float* want, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    num += (static_cast<double>(got[i]) - want[i]) * (static_cast<double>(got[i]) - want[i]);
    den += static_cast<double>(want[i]) * want[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

// Indices of the k largest scores of q against keys.
std::vector<int> top_keys(const float* q, const std::vector<float>& keys, int tokens, int head_dim, int k) {
  std::vector<float> s(tokens);
  for (int t = 0; t < tokens; ++t) {
    float acc = 0;
    for (int c = 0; c < head_dim; ++c) acc += q[c] * keys[static_cast<size_t>(t) * head_dim + c];
    s[t] = acc;
  }
  std::vector<int> idx(tokens);
  std::iota(idx.begin(), idx.end(), 0);
  k = std::min(k, tokens);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int a, int b) { return s[a] > s[b]; });
  idx.resize(k);
  std::sort(idx.begin(), idx.end());
  return idx;
}

// The queries the analysis attends with: the dump's, or else its last post-RoPE keys.
std::vector<float> analysis_queries(const KVDump& dump, int layer, int head, const std::vector<float>& keys_post, int& n) {
  const int d = dump.head_dim;
  if (dump.n_queries > 0) {
    n = dump.n_queries;
    const float* q = dump.queries_at(layer, head);
    return std::vector<float>(q, q + static_cast<size_t>(n) * d);
  }
  n = std::min(16, dump.tokens);
  return std::vector<float>(keys_post.end() - static_cast<ptrdiff_t>(n) * d, keys_post.end());
}

bool wants_attention_weights(const KVSpec& spec) {
  return spec.key.text().find("weights=attention") != std::string::npos ||
         spec.value.text().find("weights=attention") != std::string::npos;
}

CodecSums analyze_stream(const KVDump& eval, const KVDump& cal_dump, int layer, int head, const KVSpec& spec,
                         const AnalysisOptions& options, const std::vector<float>& sensitivity) {
  CodecSums sums;
  const int d = eval.head_dim, T = eval.tokens;
  const RopeTable rope = RopeTable::plain(d, eval.rope_theta);
  // Calibrate this (layer, head) alone: the one-stream shard below reads tables as layer 0, head 0.
  Calibration cal;
  const auto start = std::chrono::steady_clock::now();
  const CodecContext ctx{d, options.page_size, 0, 0, &cal};
  std::vector<int> cal_positions(cal_dump.tokens);
  std::iota(cal_positions.begin(), cal_positions.end(), 0);
  const CalibrationSamples samples{cal_dump.keys_at(layer, head), cal_positions.data(),
                                   sensitivity.empty() ? nullptr : sensitivity.data(), cal_positions.size()};
  learn_codec_tables(spec.key, Role::Key, ctx, rope, samples, cal);
  const CalibrationSamples value_samples{cal_dump.values_at(layer, head), cal_positions.data(), samples.weights,
                                         cal_positions.size()};
  learn_codec_tables(spec.value, Role::Value, ctx, rope, value_samples, cal);
  sums.calibration_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  ShardConfig config;
  config.layers = config.kv_heads = 1;
  config.head_dim = d;
  config.page_size = options.page_size;
  config.spec = spec;
  config.rope = rope;
  KVShard shard(config, &cal);
  shard.append(0, 0, eval.keys_at(layer, head), eval.values_at(layer, head), T, 0);

  const StorageStats st = shard.stats();
  sums.stored_bytes = static_cast<double>(st.total());
  sums.stored_elements = 2.0 * T * d;
  sums.projected_bytes = st.projected_bytes_per_stream(options.projected_tokens, 1);
  sums.projected_elements = 2.0 * options.projected_tokens * d;

  const KVRows decoded = shard.decode_all(0, 0);
  const std::vector<float>& keys = decoded.keys;
  const std::vector<float>& values = decoded.values;
  const std::vector<float> ref_keys = rotated(eval.keys_at(layer, head), T, d, rope);
  const float* ref_values = eval.values_at(layer, head);
  sums.key_error = relative_error(keys.data(), ref_keys.data(), ref_keys.size());
  sums.value_error = relative_error(values.data(), ref_values, ref_keys.size());

  int nq = 0;
  const std::vector<float> queries = analysis_queries(eval, layer, head, ref_keys, nq);
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const AttentionState ref = reference_attention(queries, nq, ref_keys, {ref_values, ref_keys.size()}, T, d, scale);
  const AttentionState got = shard.attend(0, 0, queries.data(), nq, scale);
  double att = 0, topk = 0;
  for (int q = 0; q < nq; ++q) {
    const size_t o = static_cast<size_t>(q) * d;
    att += relative_error(got.out.data() + o, ref.out.data() + o, d);
    const std::vector<int> a = top_keys(queries.data() + o, ref_keys, T, d, options.top_k);
    const std::vector<int> b = top_keys(queries.data() + o, keys, T, d, options.top_k);
    std::vector<int> both;
    std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(both));
    topk += static_cast<double>(both.size()) / a.size();
  }
  sums.attention_error = att / nq;
  sums.topk = topk / nq;
  sums.streams = 1;
  return sums;
}

}  // namespace

std::vector<float> attention_received(const KVDump& dump, int layer, int head) {
  const int d = dump.head_dim, T = dump.tokens;
  const RopeTable rope = RopeTable::plain(d, dump.rope_theta);
  const std::vector<float> keys = rotated(dump.keys_at(layer, head), T, d, rope);
  int nq = 0;
  const std::vector<float> queries = analysis_queries(dump, layer, head, keys, nq);
  std::vector<double> received(T, 0.0);
  std::vector<double> s(T);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  for (int q = 0; q < nq; ++q) {
    double m = -INFINITY, sum = 0;
    for (int t = 0; t < T; ++t) {
      double acc = 0;
      for (int c = 0; c < d; ++c) acc += static_cast<double>(queries[static_cast<size_t>(q) * d + c]) * keys[static_cast<size_t>(t) * d + c];
      s[t] = acc * scale;
      m = std::max(m, s[t]);
    }
    for (int t = 0; t < T; ++t) sum += (s[t] = std::exp(s[t] - m));
    for (int t = 0; t < T; ++t) received[t] += s[t] / sum;
  }
  return sensitivity_from_attention(received);
}

std::vector<CodecReport> analyze_codecs(const KVDump& eval, const KVDump& cal_dump, const AnalysisOptions& options,
                                        Communicator& comm) {
  RINGKV_REQUIRE(eval.layers == cal_dump.layers && eval.kv_heads == cal_dump.kv_heads && eval.head_dim == cal_dump.head_dim,
                 "the calibration dump has another shape than the dump analyzed");
  std::vector<KVSpec> specs;
  for (const std::string& s : options.specs) specs.push_back(KVSpec::parse(s));
  const int streams = eval.layers * eval.kv_heads;
  std::vector<CodecSums> mine(specs.size() * streams);  // [spec][stream]
  for (int i = comm.rank(); i < streams; i += comm.size()) {
    const int layer = i / eval.kv_heads, head = i % eval.kv_heads;
    std::vector<float> sensitivity;
    for (size_t s = 0; s < specs.size(); ++s) {
      if (wants_attention_weights(specs[s]) && sensitivity.empty()) sensitivity = attention_received(cal_dump, layer, head);
      mine[s * streams + i] = analyze_stream(eval, cal_dump, layer, head, specs[s], options, sensitivity);
    }
  }
  const std::vector<CodecSums> per_stream = gather_streams(mine, comm, "analyze: gather codec results");
  std::vector<CodecSums> total(specs.size());
  for (size_t s = 0; s < specs.size(); ++s)
    for (int i = 0; i < streams; ++i) add_sums(total[s], per_stream[s * streams + i]);
  std::vector<CodecReport> reports;
  for (size_t s = 0; s < specs.size(); ++s) {
    const CodecSums& t = total[s];
    CodecReport r;
    r.spec = specs[s].text();
    r.bits_per_element = 8.0 * t.stored_bytes / t.stored_elements;
    r.projected_bits = 8.0 * t.projected_bytes / t.projected_elements;
    r.key_error = t.key_error / t.streams;
    r.value_error = t.value_error / t.streams;
    r.attention_error = t.attention_error / t.streams;
    r.topk_agreement = t.topk / t.streams;
    r.calibration_seconds = t.calibration_seconds;
    reports.push_back(r);
  }
  return reports;
}

std::vector<EntropyReport> analyze_entropy(const KVDump& dump, Communicator& comm) {
  const std::vector<int> sizes{1, 2, 4, 8};
  const int d = dump.head_dim, streams = dump.layers * dump.kv_heads;
  const RopeTable rope = RopeTable::plain(d, dump.rope_theta);
  // Per stream, role and size: (joint, marginal sum, groups, samples, count, shuffled joint).
  constexpr size_t kFields = 6;
  const size_t slots = 2 * sizes.size() * kFields;
  std::vector<double> mine(static_cast<size_t>(streams) * slots, 0.0);
  for (int i = comm.rank(); i < streams; i += comm.size()) {
    const int layer = i / dump.kv_heads, head = i % dump.kv_heads;
    const std::vector<float> keys = rotated(dump.keys_at(layer, head), dump.tokens, d, rope);
    for (int role = 0; role < 2; ++role) {
      const float* rows = role == 0 ? keys.data() : dump.values_at(layer, head);
      const std::vector<GroupEntropy> e = coupled_entropy(rows, dump.tokens, d, sizes, 16);
      for (size_t s = 0; s < sizes.size(); ++s) {
        double* slot = &mine[i * slots + (role * sizes.size() + s) * kFields];
        slot[0] = e[s].joint_bits;
        slot[1] = e[s].marginal_sum_bits;
        slot[2] = e[s].groups;
        slot[3] = static_cast<double>(e[s].samples);
        slot[4] = 1;
        slot[5] = e[s].shuffled_joint_bits;
      }
    }
  }
  const std::vector<double> per_stream = gather_streams(mine, comm, "analyze: gather entropy results");
  std::vector<double> total(slots, 0.0);
  for (int i = 0; i < streams; ++i)
    for (size_t k = 0; k < slots; ++k) total[k] += per_stream[i * slots + k];
  std::vector<EntropyReport> reports;
  for (int role = 0; role < 2; ++role)
    for (size_t s = 0; s < sizes.size(); ++s) {
      const double* slot = &total[(role * sizes.size() + s) * kFields];
      EntropyReport r{role == 0 ? Role::Key : Role::Value, {}};
      r.entropy.group_size = sizes[s];
      r.entropy.joint_bits = slot[0] / slot[4];
      r.entropy.marginal_sum_bits = slot[1] / slot[4];
      r.entropy.shuffled_joint_bits = slot[5] / slot[4];
      r.entropy.groups = static_cast<int>(slot[2] / slot[4]);
      r.entropy.samples = static_cast<size_t>(slot[3] / slot[4]);
      reports.push_back(r);
    }
  return reports;
}

}  // namespace ringkv
