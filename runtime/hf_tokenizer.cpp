// Hugging Face tokenizer.json with a BPE model: byte-level BPE (GPT-2, Llama 3, Qwen 2: ByteLevel
// pre-tokenizer, alone or after a Split by the published pattern) and SentencePiece-style BPE (Llama 2,
// Mistral: Prepend/Replace normalizers or a Metaspace pre-tokenizer, byte fallback). Other normalizers,
// pre-tokenizers and models are refused by name rather than tokenized differently from the reference.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "kernels/error.hpp"
#include "runtime/tokenizer.hpp"

namespace ringkv {
namespace {

using nlohmann::json;
const std::string kMeta = "\xE2\x96\x81";  // U+2581 "▁"

const std::string kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
std::string llama3_pattern(const std::string& numbers) {
  return R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|)" + numbers +
         R"(| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
}

json read_json(const std::string& path) {
  std::ifstream in(path);
  RINGKV_REQUIRE(in, "cannot open " + path);
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    fail(path + " is not valid JSON (truncated?): " + e.what(), __FILE__, __LINE__);
  }
}

std::string type_of(const json& j) { return j.is_object() ? j.value("type", std::string()) : std::string(); }

void read_normalizer(const json& n, BpeModel& bpe) {
  if (n.is_null()) return;
  const std::string type = type_of(n);
  if (type == "Sequence") {
    for (const json& child : n.at("normalizers")) read_normalizer(child, bpe);
  } else if (type == "Prepend" && n.at("prepend") == kMeta) {
    bpe.dummy_prefix = DummyPrefix::Always;
  } else if (type == "Replace" && n.at("pattern").value("String", "") == " " && n.at("content") == kMeta) {
    bpe.space = kMeta;
  } else if (type != "NFC") {  // NFC is taken as already true of the input text
    fail(bpe.source + " uses the normalizer " + n.dump() + ", which RingKV does not implement", __FILE__, __LINE__);
  }
}

void read_pre_tokenizer(const json& p, BpeModel& bpe) {
  if (p.is_null()) return;
  const std::string type = type_of(p);
  if (type == "Sequence") {
    for (const json& child : p.at("pretokenizers")) read_pre_tokenizer(child, bpe);
  } else if (type == "ByteLevel") {
    bpe.byte_level = true;
    if (p.value("add_prefix_space", false)) bpe.dummy_prefix = DummyPrefix::UnlessSpace;
    if (p.value("use_regex", true)) bpe.split = PreSplit::Gpt2;
  } else if (type == "Split" && p.at("pattern").contains("Regex") && p.value("behavior", "") == "Isolated" &&
             !p.value("invert", false)) {
    const std::string pattern = p.at("pattern").at("Regex");
    if (pattern == kGpt2Pattern)
      bpe.split = PreSplit::Gpt2;
    else if (pattern == llama3_pattern(R"(\p{N}{1,3})"))
      bpe.split = PreSplit::Llama3, bpe.max_digits = 3;
    else if (pattern == llama3_pattern(R"(\p{N})"))
      bpe.split = PreSplit::Llama3, bpe.max_digits = 1;
    else
      fail(bpe.source + " splits text by the pattern " + pattern + ", which RingKV does not implement", __FILE__,
           __LINE__);
  } else if (type == "Metaspace" && !p.value("split", true) && p.value("replacement", "") == kMeta) {
    bpe.space = kMeta;
    if (p.value("prepend_scheme", "always") != "never") bpe.dummy_prefix = DummyPrefix::UnlessSpace;
  } else {
    fail(bpe.source + " uses the pre-tokenizer " + p.dump() + ", which RingKV does not implement", __FILE__, __LINE__);
  }
}

// "bos_token": "<s>" or {"content": "<s>", ...} in tokenizer_config.json beside the tokenizer.
std::string configured_token(const json& config, const char* key) {
  if (!config.contains(key)) return {};
  const json& t = config[key];
  return t.is_string() ? t.get<std::string>() : t.is_object() ? t.value("content", std::string()) : std::string();
}

}  // namespace

std::unique_ptr<Tokenizer> load_hf_tokenizer(const std::string& path, int32_t expected_vocab_size) {
  const json j = read_json(path);
  BpeModel bpe;
  bpe.source = path;
  std::unordered_map<std::string, int32_t> ids;  // every token, added ones included
  std::vector<std::pair<std::string, std::string>> merges;
  std::unordered_set<int32_t> special;
  try {
    const json& model = j.at("model");
    RINGKV_REQUIRE(model.value("type", "BPE") == "BPE",
                   path + " has a " + model.value("type", "") + " model; RingKV implements BPE tokenizers only");
    RINGKV_REQUIRE(model.value("continuing_subword_prefix", json()).is_null() &&
                       model.value("end_of_word_suffix", json()).is_null(),
                   path + " uses subword prefixes or suffixes, which RingKV does not implement");
    read_normalizer(j.value("normalizer", json()), bpe);
    read_pre_tokenizer(j.value("pre_tokenizer", json()), bpe);
    bpe.byte_fallback = model.value("byte_fallback", false);
    bpe.ignore_merges = model.value("ignore_merges", false);
    for (const auto& [piece, id] : model.at("vocab").items()) ids[piece] = id.get<int32_t>();
    for (const json& m : model.at("merges")) {
      if (m.is_array()) {
        merges.emplace_back(m.at(0).get<std::string>(), m.at(1).get<std::string>());
      } else {
        const std::string s = m.get<std::string>();
        const size_t space = s.find(' ');
        RINGKV_REQUIRE(space != std::string::npos && s.find(' ', space + 1) == std::string::npos,
                       path + ": merge \"" + s + "\" is not two tokens");
        merges.emplace_back(s.substr(0, space), s.substr(space + 1));
      }
    }
    for (const json& t : j.value("added_tokens", json::array())) {
      const auto id = t.at("id").get<int32_t>();
      ids[t.at("content").get<std::string>()] = id;
      if (t.value("special", false)) special.insert(id);
    }
    const std::string unk = model.value("unk_token", json()).is_string() ? model["unk_token"].get<std::string>() : "";
    if (ids.count(unk)) bpe.unk_id = ids[unk];
  } catch (const json::exception& e) {
    fail(path + " is not a valid tokenizer.json: " + e.what(), __FILE__, __LINE__);
  }

  int32_t size = 0;
  for (const auto& [piece, id] : ids) {
    RINGKV_REQUIRE(id >= 0 && id < (1 << 24), path + ": token " + piece + " has id " + std::to_string(id));
    size = std::max(size, id + 1);
  }
  RINGKV_REQUIRE(expected_vocab_size < 0 || size <= expected_vocab_size,
                 path + " has token ids up to " + std::to_string(size - 1) + ", beyond the model's vocabulary of " +
                     std::to_string(expected_vocab_size));
  bpe.pieces.assign(size, std::string());
  bpe.bytes.assign(size, std::string());
  for (const auto& [piece, id] : ids) bpe.pieces[id] = piece;

  // What each token decodes to: byte-level characters mapped back to bytes, or "▁" as a space and the
  // <0xXX> byte pieces as their byte. Added tokens decode to their text.
  std::unordered_map<std::string, char> byte_of;
  for (int b = 0; b < 256; ++b) byte_of[byte_level_chars()[b]] = char(b);
  bpe.byte_ids.fill(-1);
  for (int32_t id = 0; id < size; ++id) {
    const std::string& piece = bpe.pieces[id];
    std::string& bytes = bpe.bytes[id];
    unsigned value = 256;
    if (bpe.byte_level) {
      for (size_t i = 0; i < piece.size();) {
        const size_t n = (static_cast<unsigned char>(piece[i]) & 0xE0) == 0xC0 ? 2 : 1;
        const auto it = byte_of.find(piece.substr(i, n));
        bytes += it != byte_of.end() ? std::string(1, it->second) : piece.substr(i, n);
        i += n;
      }
    } else if (bpe.byte_fallback && piece.size() == 6 && std::sscanf(piece.c_str(), "<0x%2X>", &value) == 1) {
      bpe.byte_ids[value] = id;
      bytes = std::string(1, char(value));
    } else {
      bytes = bpe.space.empty() ? piece : replace_all(piece, bpe.space, " ");
    }
  }
  for (const json& t : j.value("added_tokens", json::array())) bpe.bytes[t["id"].get<int32_t>()] = t["content"];
  if (bpe.byte_fallback) {
    for (int b = 0; b < 256; ++b)
      RINGKV_REQUIRE(bpe.byte_ids[b] >= 0,
                     path + " has byte_fallback but no <0xXX> token for byte " + std::to_string(b));
  }

  // Special tokens are never produced from text; every other token can be.
  for (const auto& [piece, id] : ids)
    if (!special.count(id)) bpe.symbols.emplace(piece, id);
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    const auto l = bpe.symbols.find(left), r = bpe.symbols.find(right), m = bpe.symbols.find(left + right);
    RINGKV_REQUIRE(
        l != bpe.symbols.end() && r != bpe.symbols.end() && m != bpe.symbols.end(),
        path + ": merge " + std::to_string(rank) + " (" + left + " " + right + ") names a token not in the vocabulary");
    bpe.merges.push_back({l->second, r->second, m->second, -static_cast<float>(rank)});
  }

  // BOS and EOS: as tokenizer_config.json beside the file names them, else by their usual names.
  const std::filesystem::path config_path = std::filesystem::path(path).parent_path() / "tokenizer_config.json";
  const json config = std::filesystem::exists(config_path) ? read_json(config_path.string()) : json::object();
  auto find = [&](const char* key, std::initializer_list<const char*> usual) {
    const std::string configured = configured_token(config, key);
    if (!configured.empty()) {
      RINGKV_REQUIRE(ids.count(configured),
                     config_path.string() + ": " + key + " " + configured + " is not a token of " + path);
      return ids[configured];
    }
    for (const char* name : usual)
      if (ids.count(name)) return ids[name];
    return -1;
  };
  bpe.bos_id = find("bos_token", {"<s>", "<|begin_of_text|>", "<bos>"});
  bpe.eos_id = find("eos_token", {"</s>", "<|end_of_text|>", "<|endoftext|>", "<eos>"});
  return make_bpe_tokenizer(std::move(bpe));
}

}  // namespace ringkv
