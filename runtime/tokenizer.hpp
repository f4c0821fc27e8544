#pragma once
// Tokenizers of the model runtime: SentencePiece BPE (.model), Hugging Face tokenizer.json (byte-level
// BPE of GPT-2 / Llama 3 / Qwen, and SentencePiece-style BPE of Llama 2 / Mistral) and llama2.c's
// tokenizer.bin. The three file formats are read into one BpeModel, which one merge engine runs.
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ringkv {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Token ids of plain text, without BOS/EOS.
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;
  // The bytes token `id` contributes when it follows `previous` (-1 at the start of a sequence or after
  // BOS), so generated tokens can be streamed one by one; concatenating them gives decode().
  virtual std::string token_bytes(int32_t previous, int32_t id) const = 0;
  std::string decode(std::span<const int32_t> ids) const;  // skips BOS/EOS
  int32_t bos_id() const { return bos_id_; }
  int32_t eos_id() const { return eos_id_; }
  int32_t vocab_size() const { return vocab_size_; }

 protected:
  int32_t bos_id_ = -1, eos_id_ = -1, vocab_size_ = 0;
};

// How text is cut into words before BPE: not at all (SentencePiece), or by the published GPT-2 or
// Llama 3 pre-tokenizer patterns (Llama 3 with at most `max_digits` digits per number, 1 for Qwen 2).
enum class PreSplit { None, Gpt2, Llama3 };
enum class DummyPrefix { None, Always, UnlessSpace };  // SentencePiece prepends always, HF Metaspace unless present

// Everything the merge engine needs, filled by the file readers below.
struct BpeModel {
  std::string source;               // the file, for messages
  std::vector<std::string> pieces;  // by id, as the vocabulary spells them ("▁the", "Ġthe", "<0x0A>"); "" for gaps
  std::vector<std::string> bytes;   // by id, what the token decodes to ("" for control tokens)
  // Initial symbols: one UTF-8 character (or one byte-level character) and the whole-word entries that
  // ignore_merges uses. Pieces that merges may not produce (control, byte) are left out.
  std::unordered_map<std::string, int32_t> symbols;
  struct Merge {
    int32_t left, right, merged;
    float priority;  // higher merges first: the SentencePiece score, or minus the rank of a HF merge
  };
  std::vector<Merge> merges;
  PreSplit split = PreSplit::None;
  int max_digits = 3;
  bool byte_level = false;     // bytes go through the GPT-2 byte-to-unicode table
  bool ignore_merges = false;  // a word that is itself in the vocabulary is one token (Llama 3)
  std::string space;           // what ' ' becomes before merging ("▁"), empty: kept as is
  DummyPrefix dummy_prefix = DummyPrefix::None;
  bool remove_extra_whitespaces = false;  // SentencePiece: trim and collapse runs of spaces
  bool byte_fallback = false;             // unknown characters become <0xXX> tokens, else unk_id
  std::array<int32_t, 256> byte_ids{};    // with byte_fallback
  int32_t unk_id = -1, bos_id = -1, eos_id = -1;
};

// The merge engine over a model; checks its ids are in range.
std::unique_ptr<Tokenizer> make_bpe_tokenizer(BpeModel model);
// SentencePiece's merge rule: two symbols merge when their concatenation is a piece, ranked by its score
// (scores by id). Adds a merge for every split of every piece in model.symbols into two such pieces.
void add_concatenation_merges(BpeModel& model, const std::vector<float>& scores);

// The file readers. Each refuses damaged files naming the path, and a vocabulary larger than
// expected_vocab_size (ids the model's embedding has no row for) when that is given.
std::unique_ptr<Tokenizer> load_sentencepiece_model(const std::string& path, int32_t expected_vocab_size = -1);
std::unique_ptr<Tokenizer> load_hf_tokenizer(const std::string& json_path, int32_t expected_vocab_size = -1);
// tokenizer.bin stores no piece count: it is the vocab_size of the llama2.c checkpoint.
std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::string& path, int32_t vocab_size);

// Loads from a model directory (tokenizer.json preferred, else tokenizer.model) or a file path
// (*.json, *.model SentencePiece, or a llama2.c tokenizer.bin, which needs vocab_size from the caller's checkpoint).
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path, int32_t expected_vocab_size = -1);

// GPT-2's byte-to-unicode table: the UTF-8 character that stands for each byte in byte-level vocabularies.
const std::array<std::string, 256>& byte_level_chars();

// text with every `from` replaced by `to` (how pieces spell spaces, "▁" or "Ġ", back to spaces).
std::string replace_all(std::string_view text, std::string_view from, std::string_view to);

// The GPT-2 / Llama 3 pre-tokenization of `text` into consecutive pieces covering it.
std::vector<std::string_view> pre_split(std::string_view text, PreSplit split, int max_digits);

}  // namespace ringkv
