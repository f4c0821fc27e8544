#include "runtime/distributed_sequence.hpp"

#include <algorithm>
#include <filesystem>

#include "kernels/error.hpp"
#include "kvstore/binary_io.hpp"

namespace ringkv {

namespace {
constexpr char kSequenceMagic[8] = {'R', 'K', 'V', 'S', 'E', 'Q', '0', '1'};
constexpr uint32_t kSequenceVersion = 1;

std::string shard_path(const std::string& dir, int rank, int ranks) {
  return dir + "/rank-" + std::to_string(rank) + "-of-" + std::to_string(ranks) + ".rkvsnap";
}

std::span<const uint8_t> as_bytes(const std::vector<float>& v) {
  return {reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(float)};
}

std::vector<float> as_floats(const std::vector<uint8_t>& bytes) {
  std::vector<float> v(bytes.size() / sizeof(float));
  std::copy_n(bytes.data(), v.size() * sizeof(float), reinterpret_cast<uint8_t*>(v.data()));  // empty allowed
  return v;
}
}  // namespace

DistributedSequence::DistributedSequence(const Transformer& model, KVShard& kv, Communicator* comm)
    : model_(model), kv_(kv), comm_(comm), layout_(comm ? comm->size() : 1, kv.config().page_size) {}

void DistributedSequence::prefill(std::span<const int32_t> tokens, int chunk_tokens, std::vector<float>& logits,
                                  bool all_logits) {
  RINGKV_REQUIRE(chunk_tokens > 0, "prefill chunk size must be positive");
  RINGKV_REQUIRE(!tokens.empty(), "prefill needs at least one token");
  const size_t vocab = static_cast<size_t>(model_.config().vocab_size);
  const size_t segment = static_cast<size_t>(chunk_tokens) * layout_.ranks();
  logits.clear();
  std::vector<float> mine;
  for (size_t begin = 0; begin < tokens.size();) {
    const int n = layout_.next_segment(tokens.size() - begin, segment);
    const bool last_segment = begin + n == tokens.size();
    const std::vector<std::vector<TokenRun>> plan = layout_.plan_segment(n);
    std::vector<int32_t> my_tokens;
    for (const TokenRun& run : plan[rank()])
      for (int i = 0; i < run.tokens; ++i) my_tokens.push_back(tokens[begin + run.first_position - length() + i]);
    SequenceAttention attention = SequenceAttention::prefill(kv_, comm_, plan[rank()]);
    model_.forward(my_tokens, attention, mine, all_logits);
    ring_bytes_sent_ += attention.ring_bytes_sent();
    ring_wait_seconds_ += attention.ring_wait_seconds();

    if (all_logits) {
      // Every rank's rows, placed by position.
      const size_t at = logits.size();
      logits.resize(at + static_cast<size_t>(n) * vocab);
      const auto gathered = layout_.ranks() > 1 ? comm_->all_gather_bytes(as_bytes(mine), "prefill: gather logits")
                                                : std::vector<std::vector<uint8_t>>{};
      for (int r = 0; r < layout_.ranks(); ++r) {
        const std::vector<float> rows = layout_.ranks() > 1 ? as_floats(gathered[r]) : mine;
        size_t row = 0;
        for (const TokenRun& run : plan[r])
          for (int i = 0; i < run.tokens; ++i, ++row)
            std::copy_n(rows.data() + row * vocab, vocab, logits.data() + at + (run.first_position - length() + i) * vocab);
      }
    } else if (last_segment) {
      // The last token's rank sends its logits to all.
      const int end = length() + n;
      int holder = 0;
      for (int r = 0; r < layout_.ranks(); ++r)
        if (!plan[r].empty() && plan[r].back().first_position + plan[r].back().tokens == end) holder = r;
      if (layout_.ranks() > 1) {
        const std::span<const uint8_t> view = as_bytes(mine);
        std::vector<uint8_t> bytes(view.begin(), view.end());
        comm_->broadcast_bytes(bytes, holder, "prefill: share the last token's logits");
        mine = as_floats(bytes);
      }
      logits = mine;
    }
    layout_.add_segment(n);
    begin += static_cast<size_t>(n);
  }
}

void DistributedSequence::decode(int32_t token, std::vector<float>& logits) {
  SequenceAttention attention = SequenceAttention::decode(kv_, comm_, length(), layout_.decode_owner());
  model_.forward({&token, 1}, attention, logits, false);
  layout_.add_decoded_token();
}

void DistributedSequence::save(const std::string& dir, uint64_t fingerprint) const {
  if (rank() == 0) {
    std::filesystem::create_directories(dir);
    BinaryWriter w;
    begin_file(w, kSequenceMagic, kSequenceVersion);
    w.put<uint64_t>(fingerprint);
    w.put_string(kv_.config().spec.text());
    const std::vector<uint8_t> layout = layout_.to_bytes();
    w.put<uint32_t>(static_cast<uint32_t>(layout.size()));
    w.append(layout.data(), layout.size());
    finish_file(w);
    write_file_atomically(dir + "/sequence.rkvseq", w.bytes());
  }
  if (comm_) comm_->barrier("save the sequence: folder made");
  kv_.save_snapshot(shard_path(dir, rank(), layout_.ranks()));
  if (comm_) comm_->barrier("save the sequence: every shard written");
}

namespace {
struct SavedSequence {
  std::string path;
  uint64_t fingerprint = 0;
  std::string spec;
  std::vector<uint8_t> layout;
};

SavedSequence read_saved(const std::string& dir) {
  SavedSequence s{dir + "/sequence.rkvseq"};
  const std::vector<uint8_t> file = read_file(s.path);
  BinaryReader r = open_file_payload(file, kSequenceMagic, kSequenceVersion, s.path, "RingKV saved sequence");
  s.fingerprint = r.get<uint64_t>();
  s.spec = r.get_string();
  const uint32_t n = r.get<uint32_t>();
  const uint8_t* bytes = r.take(n);
  s.layout.assign(bytes, bytes + n);
  return s;
}
}  // namespace

int DistributedSequence::saved_length(const std::string& dir) {
  const SavedSequence s = read_saved(dir);
  BinaryReader r(s.layout.data(), s.layout.size(), s.path);
  const int ranks = r.get<int32_t>(), page = r.get<int32_t>();
  return SequenceLayout::from_bytes(s.layout, ranks, page, s.path).length();
}

uint64_t DistributedSequence::load(const std::string& dir) {
  const SavedSequence s = read_saved(dir);
  const std::string& path = s.path;
  RINGKV_REQUIRE(s.spec == kv_.config().spec.text(),
                 path + " was saved with KV codec '" + s.spec + "', not '" + kv_.config().spec.text() + "'");
  layout_ = SequenceLayout::from_bytes(s.layout, layout_.ranks(), kv_.config().page_size, path);
  const std::string shard = shard_path(dir, rank(), layout_.ranks());
  kv_ = KVShard::load_snapshot(shard, kv_.config(), kv_.calibration());
  RINGKV_REQUIRE(static_cast<long long>(kv_.tokens(0, 0)) == layout_.tokens_on(rank()),
                 shard + " holds " + std::to_string(kv_.tokens(0, 0)) + " tokens where " + path + " says " +
                     std::to_string(layout_.tokens_on(rank())));
  return s.fingerprint;
}

}  // namespace ringkv
