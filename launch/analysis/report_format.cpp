// Tables and CSV of `ringkv analyze`.
#include <cstdio>
#include <sstream>

#include "launch/analysis/codec_analysis.hpp"

namespace ringkv {

namespace {
std::string line(const char* format, auto... args) {
  char buf[512];
  std::snprintf(buf, sizeof buf, format, args...);
  return buf;
}
}  // namespace

std::string format_codec_table(const std::vector<CodecReport>& reports, const KVDump& eval, double projected_tokens) {
  std::ostringstream out;
  out << line("KV codecs on %d layers x %d KV heads x %d tokens, head_dim %d (errors against fp32)\n", eval.layers,
              eval.kv_heads, eval.tokens, eval.head_dim);
  char ctx[32];
  std::snprintf(ctx, sizeof ctx, projected_tokens >= (1 << 20) ? "%.0fM" : "%.0fK",
                projected_tokens / (projected_tokens >= (1 << 20) ? 1 << 20 : 1 << 10));
  const std::string projected = std::string("bits@") + ctx;
  out << line("%-58s %8s %9s %9s %9s %9s %7s %8s\n", "codec", "bits/el", projected.c_str(), "K err", "V err",
              "attn err", "top-k", "calib s");
  for (const CodecReport& r : reports)
    out << line("%-58s %8.3f %9.3f %9.4f %9.4f %9.4f %7.3f %8.2f\n", r.spec.c_str(), r.bits_per_element, r.projected_bits,
                r.key_error, r.value_error, r.attention_error, r.topk_agreement, r.calibration_seconds);
  out << line("bits/el: everything stored for this dump (codes, scales, outliers, sinks, headers, tail, codebooks);\n"
              "%s: the same projected to %s tokens of context; top-k: share of the exact top-k keys kept.\n",
              projected.c_str(), ctx);
  return out.str();
}

std::string format_codec_csv(const std::vector<CodecReport>& reports) {
  std::ostringstream out;
  out << "codec,bits_per_element,projected_bits_per_element,key_rel_error,value_rel_error,attention_rel_error,"
         "topk_agreement,calibration_seconds\n";
  for (const CodecReport& r : reports)
    out << '"' << r.spec << '"' << line(",%.6f,%.6f,%.6g,%.6g,%.6g,%.6f,%.4f\n", r.bits_per_element, r.projected_bits,
                                        r.key_error, r.value_error, r.attention_error, r.topk_agreement,
                                        r.calibration_seconds);
  return out.str();
}

std::string format_entropy_table(const std::vector<EntropyReport>& reports) {
  std::ostringstream out;
  out << "Coupled-channel entropy (16 bins per channel, plug-in estimate, mean over layers and heads). The estimate\n"
         "is biased low as joint bins approach the samples; 'shuffled' is the same estimate with each channel\n"
         "shuffled on its own (same marginals, no coupling): coupling is what joint bits fall below it.\n";
  out << line("%-5s %6s %12s %14s %16s %10s\n", "role", "group", "joint bits", "shuffled bits", "sum marginals", "samples");
  for (const EntropyReport& r : reports)
    out << line("%-5s %6d %12.3f %14.3f %16.3f %10zu\n", role_name(r.role), r.entropy.group_size, r.entropy.joint_bits,
                r.entropy.shuffled_joint_bits, r.entropy.marginal_sum_bits, r.entropy.samples);
  return out.str();
}

}  // namespace ringkv
