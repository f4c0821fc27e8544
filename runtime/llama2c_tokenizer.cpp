// llama2.c tokenizer.bin: int32 max_token_length, then per token a float score, an int32 length and the
// bytes, with no count (the checkpoint's vocab_size gives it). It is a SentencePiece BPE vocabulary
// exported with spaces in place of "▁": <unk>, BOS, EOS at ids 0-2, the <0xXX> byte pieces at 3-258.
#include <cstdio>
#include <cstring>

#include "kernels/error.hpp"
#include "runtime/safetensors.hpp"
#include "runtime/tokenizer.hpp"

namespace ringkv {

std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::string& path, int32_t vocab_size) {
  RINGKV_REQUIRE(vocab_size > 258, path +
                                       ": a llama2.c tokenizer needs the checkpoint's vocab_size (above 258 for "
                                       "its byte pieces), got " +
                                       std::to_string(vocab_size));
  const MappedFile file(path);
  const uint8_t* p = file.data();
  const uint8_t* const end = p + file.size();
  auto read = [&](void* out, size_t n, const char* what) {
    RINGKV_REQUIRE(size_t(end - p) >= n,
                   path + " is truncated: no " + what + " (vocab_size " + std::to_string(vocab_size) + " too large?)");
    std::memcpy(out, p, n);
    p += n;
  };
  int32_t max_length = 0;
  read(&max_length, 4, "max_token_length");
  RINGKV_REQUIRE(max_length > 0 && max_length < (1 << 16),
                 path + " is not a llama2.c tokenizer: max_token_length " + std::to_string(max_length));
  BpeModel bpe;
  bpe.source = path;
  bpe.dummy_prefix = DummyPrefix::Always;  // llama2.c's encode() starts non-empty text with the " " token
  bpe.byte_fallback = true;
  bpe.unk_id = 0, bpe.bos_id = 1, bpe.eos_id = 2;
  std::vector<float> scores(vocab_size);
  for (int32_t id = 0; id < vocab_size; ++id) {
    int32_t length = 0;
    read(&scores[id], 4, "score");
    read(&length, 4, "token length");
    RINGKV_REQUIRE(length >= 0 && length <= max_length,
                   path + " is corrupt: token " + std::to_string(id) + " has length " + std::to_string(length));
    std::string piece(size_t(length), '\0');
    read(piece.data(), piece.size(), "token bytes");
    std::string bytes = piece;
    if (id == 0) {
      bytes = " \xE2\x81\x87 ";  // as SentencePiece shows unknown text: " ⁇ "
    } else if (id <= 2) {
      bytes.clear();
    } else if (id <= 258) {
      char expected[8];
      std::snprintf(expected, sizeof expected, "<0x%02X>", id - 3);
      RINGKV_REQUIRE(piece == expected,
                     path + " is not a llama2.c tokenizer: token " + std::to_string(id) + " should be " + expected);
      const int value = id - 3;
      bpe.byte_ids[value] = id;
      bytes = std::string(1, char(value));
    } else {
      bpe.symbols.emplace(piece, id);
    }
    bpe.pieces.push_back(std::move(piece));
    bpe.bytes.push_back(std::move(bytes));
  }
  RINGKV_REQUIRE(p == end, path + " has " + std::to_string(end - p) + " bytes after its " + std::to_string(vocab_size) +
                               " tokens: it does not match the checkpoint's vocab_size");
  add_concatenation_merges(bpe, scores);
  return make_bpe_tokenizer(std::move(bpe));
}

}  // namespace ringkv
