#pragma once
// `ringkv analyze`: how well each codec keeps the keys, values and attention of a KV dump. Every
// (layer, KV head) is calibrated on the calibration dump, stored in a one-stream KVShard with the
// codec, and compared against the uncompressed fp32 data. Ranks split the (layer, head) pairs.
#include <string>
#include <vector>

#include "comm/communicator.hpp"
#include "kernels/error.hpp"
#include "kvstore/codec_spec.hpp"
#include "kvstore/entropy.hpp"
#include "kvstore/kv_dump.hpp"

namespace ringkv {

struct AnalysisOptions {
  std::vector<std::string> specs;
  int page_size = 128;
  int top_k = 32;             // attention agreement: overlap of the top-k keys of each query
  double projected_tokens = 1 << 20;  // context length for the projected bits per element
};

struct CodecReport {
  std::string spec;
  double bits_per_element = 0;      // everything stored for the dump's context, codebooks included
  double projected_bits = 0;        // the same at options.projected_tokens tokens
  double key_error = 0;             // relative Frobenius error of post-RoPE keys
  double value_error = 0;
  double attention_error = 0;       // mean over queries of |o - o_ref| / |o_ref|
  double topk_agreement = 0;        // mean fraction of the reference top-k keys kept in the top k
  double calibration_seconds = 0;   // summed over ranks
};

struct EntropyReport {
  Role role;
  GroupEntropy entropy;  // averaged over layers and heads
};

// Every rank calls this; the reports are complete on every rank.
std::vector<CodecReport> analyze_codecs(const KVDump& eval, const KVDump& calibration, const AnalysisOptions& options,
                                        Communicator& comm);

// Coupled-quantization entropy analysis of the dump's post-RoPE keys and values, group sizes 1-8.
std::vector<EntropyReport> analyze_entropy(const KVDump& dump, Communicator& comm);

// Sensitivity of each token of (layer, head): the attention it receives from the dump's queries,
// normalized to mean 1 (with a floor so that no token is ignored by weighted k-means).
std::vector<float> attention_received(const KVDump& dump, int layer, int head);

std::string format_codec_table(const std::vector<CodecReport>& reports, const KVDump& eval, double projected_tokens);
std::string format_codec_csv(const std::vector<CodecReport>& reports);
std::string format_entropy_table(const std::vector<EntropyReport>& reports);

}  // namespace ringkv
