// Tokenizer::decode and the choice of reader by what a path holds.
#include "runtime/tokenizer.hpp"

#include <filesystem>

#include "kernels/error.hpp"

namespace ringkv {

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  std::string text;
  int32_t previous = -1;
  for (int32_t id : ids) {
    if (id != bos_id_ && id != eos_id_) text += token_bytes(previous, id);
    previous = id;
  }
  return text;
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path, int32_t expected_vocab_size) {
  namespace fs = std::filesystem;
  const fs::path p(path);
  if (fs::is_directory(p)) {
    if (fs::exists(p / "tokenizer.json"))
      return load_hf_tokenizer((p / "tokenizer.json").string(), expected_vocab_size);
    RINGKV_REQUIRE(fs::exists(p / "tokenizer.model"),
                   "model folder " + path + " has neither tokenizer.json nor tokenizer.model");
    return load_sentencepiece_model((p / "tokenizer.model").string(), expected_vocab_size);
  }
  RINGKV_REQUIRE(fs::exists(p), "tokenizer " + path + " does not exist");
  const std::string ext = p.extension().string();
  if (ext == ".json") return load_hf_tokenizer(path, expected_vocab_size);
  if (ext == ".model") return load_sentencepiece_model(path, expected_vocab_size);
  RINGKV_REQUIRE(ext == ".bin", "tokenizer " + path + " is not a .json, .model or llama2.c .bin file");
  RINGKV_REQUIRE(expected_vocab_size > 0, "the llama2.c tokenizer " + path + " needs the checkpoint's vocab_size");
  return load_llama2c_tokenizer(path, expected_vocab_size);
}

std::string replace_all(std::string_view text, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(text.size());
  for (size_t at = 0;;) {
    const size_t hit = text.find(from, at);
    out.append(text.substr(at, hit == std::string_view::npos ? std::string_view::npos : hit - at));
    if (hit == std::string_view::npos) return out;
    out.append(to);
    at = hit + from.size();
  }
}

}  // namespace ringkv
