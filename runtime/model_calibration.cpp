#include "runtime/model_calibration.hpp"

#include <algorithm>

#include "kernels/error.hpp"
#include "kvstore/codec.hpp"
#include "kvstore/codec_learning.hpp"

namespace ringkv {

CollectedKV collect_kv(const Transformer& model, std::span<const int32_t> tokens, int window, int chunk,
                       int dump_queries) {
  const ModelConfig& c = model.config();
  const int d = c.head_dim, group = c.heads / c.kv_heads;
  RINGKV_REQUIRE(window > dump_queries && dump_queries >= 0, "calibration windows must be longer than the dump's queries");
  RINGKV_REQUIRE(tokens.size() > static_cast<size_t>(dump_queries), "calibration text is too short: " +
                                                                         std::to_string(tokens.size()) + " tokens");
  CollectedKV kv;
  kv.layers = c.layers, kv.kv_heads = c.kv_heads, kv.head_dim = d;
  kv.streams.resize(static_cast<size_t>(c.layers) * c.kv_heads);
  std::vector<std::vector<double>> received_all(kv.streams.size());

  const int first_window = static_cast<int>(std::min<size_t>(tokens.size(), window));
  KVDump& dump = kv.first_window;
  dump.layers = c.layers, dump.kv_heads = c.kv_heads, dump.head_dim = d, dump.tokens = first_window - dump_queries;
  dump.query_heads_per_kv = group, dump.n_queries = dump_queries * group, dump.rope_theta = c.rope_theta;
  dump.queries.resize(static_cast<size_t>(c.layers) * c.kv_heads * dump.n_queries * d);

  for (size_t begin = 0; begin < tokens.size(); begin += window) {
    const int n = static_cast<int>(std::min<size_t>(window, tokens.size() - begin));
    std::vector<std::vector<double>> received(kv.streams.size(), std::vector<double>(n, 0.0));
    ActivationObserver observer;
    observer.wants_received_attention = true;
    observer.observe = [&](const AttentionActivations& a) {
      for (int kh = 0; kh < c.kv_heads; ++kh) {
        CollectedKV::Stream& s = kv.at(a.layer, kh);
        for (int i = 0; i < a.tokens; ++i) {
          const size_t row = (static_cast<size_t>(i) * c.kv_heads + kh) * d;
          s.keys_pre_rope.insert(s.keys_pre_rope.end(), a.keys_pre_rope + row, a.keys_pre_rope + row + d);
          s.values.insert(s.values.end(), a.values + row, a.values + row + d);
          s.positions.push_back(a.first_position + i);
          const int p = a.first_position + i;  // the dump's queries: the first window's last positions
          if (begin == 0 && p >= dump.tokens && p < first_window)
            std::copy_n(a.queries + (static_cast<size_t>(i) * c.heads + static_cast<size_t>(kh) * group) * d, group * d,
                        dump.queries_at(a.layer, kh) + static_cast<size_t>(p - dump.tokens) * group * d);
        }
        const std::vector<double>& r = (*a.received)[kh];
        std::vector<double>& sum = received[static_cast<size_t>(a.layer) * c.kv_heads + kh];
        for (size_t t = 0; t < r.size(); ++t) sum[t] += r[t];
      }
    };
    KVShard cache(model.shard_config(KVSpec::parse("bf16"), 128, SIZE_MAX), nullptr);
    std::vector<float> logits;
    model.prefill(tokens.subspan(begin, n), 0, chunk, cache, logits, false, &observer);
    // Mean attention per query that could see the token: early tokens are seen by more queries.
    for (size_t s = 0; s < received.size(); ++s)
      for (int t = 0; t < n; ++t) received_all[s].push_back(received[s][t] / (static_cast<double>(n - t) * group));
  }
  for (size_t s = 0; s < kv.streams.size(); ++s) kv.streams[s].sensitivity = sensitivity_from_attention(received_all[s]);

  const size_t per_stream = static_cast<size_t>(dump.tokens) * d;
  dump.keys.resize(kv.streams.size() * per_stream);
  dump.values.resize(dump.keys.size());
  for (int l = 0; l < c.layers; ++l)
    for (int kh = 0; kh < c.kv_heads; ++kh) {
      const CollectedKV::Stream& s = kv.at(l, kh);
      std::copy_n(s.keys_pre_rope.begin(), per_stream, dump.keys_at(l, kh));
      std::copy_n(s.values.begin(), per_stream, dump.values_at(l, kh));
    }
  return kv;
}

Calibration learn_calibration(const CollectedKV& kv, std::span<const KVSpec> specs, int page_size, const RopeTable& rope,
                              const NearestSearch* nearest) {
  Calibration cal;
  for (int l = 0; l < kv.layers; ++l)
    for (int h = 0; h < kv.kv_heads; ++h) {
      const CollectedKV::Stream& s = kv.streams[static_cast<size_t>(l) * kv.kv_heads + h];
      const CodecContext ctx{kv.head_dim, page_size, l, h, &cal, nearest};
      const CalibrationSamples keys{s.keys_pre_rope.data(), s.positions.data(), s.sensitivity.data(), s.positions.size()};
      const CalibrationSamples values{s.values.data(), s.positions.data(), s.sensitivity.data(), s.positions.size()};
      for (const KVSpec& spec : specs) {
        learn_codec_tables(spec.key, Role::Key, ctx, rope, keys, cal);
        learn_codec_tables(spec.value, Role::Value, ctx, rope, values, cal);
      }
    }
  return cal;
}

}  // namespace ringkv
