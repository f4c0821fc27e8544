#include "runtime/distributed_sequence.hpp"

#include <algorithm>
#include <filesystem>

#include "kernels/error.hpp"
#include "kvstore/binary_io.hpp"
#include "runtime/segmented_prefill.hpp"

namespace ringkv {

namespace {
constexpr char kSequenceMagic[8] = {'R', 'K', 'V', 'S', 'E', 'Q', '0', '1'};
constexpr uint32_t kSequenceVersion = 1;

std::string shard_path(const std::string& dir, int rank, int ranks) {
  return dir + "/rank-" + std::to_string(rank) + "-of-" + std::to_string(ranks) + ".rkvsnap";
}
}  // namespace

DistributedSequence::DistributedSequence(const Transformer& model, KVShard& kv, Communicator* comm)
    : model_(model), kv_(kv), comm_(comm), layout_(comm ? comm->size() : 1, kv.config().page_size) {}

void DistributedSequence::prefill(std::span<const int32_t> tokens, int chunk_tokens, std::vector<float>& logits,
                                  bool all_logits) {
  prefill_in_segments(layout_, rank(), comm_, tokens, chunk_tokens, static_cast<size_t>(model_.config().vocab_size), all_logits,
                      logits, [&](const std::vector<std::vector<TokenRun>>& plan, std::span<const int32_t> mine_tokens,
                                  std::vector<float>& mine) {
                        SequenceAttention attention = SequenceAttention::prefill(kv_, comm_, plan[rank()]);
                        model_.forward(mine_tokens, attention, mine, all_logits);
                        ring_bytes_sent_ += attention.ring_bytes_sent();
                        ring_wait_seconds_ += attention.ring_wait_seconds();
                      });
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
