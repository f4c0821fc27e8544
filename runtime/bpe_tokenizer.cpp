// The merge engine shared by every tokenizer format: text is normalized, cut into words, and each word's
// characters are merged pair by pair, best pair first (highest score, leftmost on ties), through a heap
// over a linked list of symbols, so a word of n characters costs O(n log n). Words repeat, so their
// ids are cached for the length of one encode() call.
#include <queue>

#include "kernels/error.hpp"
#include "runtime/tokenizer.hpp"

namespace ringkv {
namespace {

// Length of the UTF-8 character starting at s[i]; malformed bytes count as one-byte characters.
size_t utf8_length(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  const size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
  if (i + n > s.size()) return 1;
  for (size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 1;
  return n;
}

uint64_t pair_key(int32_t left, int32_t right) { return (uint64_t(uint32_t(left)) << 32) | uint32_t(right); }

class BpeTokenizer final : public Tokenizer {
 public:
  explicit BpeTokenizer(BpeModel model);
  std::vector<int32_t> encode(std::string_view text) const override;
  std::string token_bytes(int32_t previous, int32_t id) const override;

 private:
  struct Symbol {
    int32_t id;  // -1: not in the vocabulary
    uint32_t start, length;
    int32_t prev, next;
  };
  struct Candidate {
    float priority;
    uint32_t left_start;
    int32_t left, right, left_id, right_id, merged;
    bool operator<(const Candidate& o) const {  // the heap's top is the best merge
      return priority != o.priority ? priority < o.priority : left_start > o.left_start;
    }
  };
  using Cache = std::unordered_map<std::string, std::vector<int32_t>>;

  std::string normalize(std::string_view text) const;
  void encode_word(std::string_view word, Cache& cache, std::vector<int32_t>& out) const;
  int32_t symbol_id(std::string_view s) const;

  BpeModel m_;
  std::string meta_;  // the space symbol words start with: m_.space, or ' ' itself
  std::unordered_map<uint64_t, std::pair<float, int32_t>> merges_;
  std::array<int32_t, 256> single_byte_ids_;  // symbol of byte b (byte-level) or of ASCII character b
  bool cut_before_meta_ = false;              // no piece holds the space symbol after another character
  std::vector<bool> starts_with_meta_;
};

BpeTokenizer::BpeTokenizer(BpeModel model) : m_(std::move(model)) {
  const std::string& src = m_.source;
  RINGKV_REQUIRE(!m_.pieces.empty() && m_.pieces.size() < (1u << 30), src + " has an empty or absurd vocabulary");
  RINGKV_REQUIRE(m_.bytes.size() == m_.pieces.size(), src + ": token bytes do not cover the vocabulary");
  vocab_size_ = static_cast<int32_t>(m_.pieces.size());
  auto check = [&](int32_t id, bool optional, const char* what) {
    RINGKV_REQUIRE((optional && id == -1) || (id >= 0 && id < vocab_size_),
                   src + ": " + what + " id " + std::to_string(id) + " is outside the vocabulary of " +
                       std::to_string(vocab_size_));
  };
  check(m_.bos_id, true, "BOS"), check(m_.eos_id, true, "EOS"), check(m_.unk_id, true, "unknown-token");
  bos_id_ = m_.bos_id, eos_id_ = m_.eos_id;
  if (m_.byte_fallback)
    for (int32_t id : m_.byte_ids) check(id, false, "byte-fallback");
  for (const auto& [text, id] : m_.symbols) check(id, false, "piece");
  merges_.reserve(m_.merges.size());
  for (const BpeModel::Merge& mg : m_.merges) {
    check(mg.left, false, "merge"), check(mg.right, false, "merge"), check(mg.merged, false, "merge");
    merges_.try_emplace(pair_key(mg.left, mg.right), mg.priority, mg.merged);  // the first (best) one wins
  }

  meta_ = m_.space.empty() ? " " : m_.space;
  for (int b = 0; b < 256; ++b)
    single_byte_ids_[b] = symbol_id(m_.byte_level ? byte_level_chars()[b] : std::string(1, char(b)));
  // SentencePiece does not cut text into words, but when no piece has the space symbol after another
  // character (true of Llama 2: only "▁▁..." pieces hold it twice), no merge crosses the start of a space
  // run, so the text can be cut there and merged piecewise with the same result.
  cut_before_meta_ = m_.split == PreSplit::None && !m_.byte_level;
  starts_with_meta_.resize(m_.pieces.size());
  for (size_t id = 0; id < m_.pieces.size(); ++id) {
    const std::string& p = m_.pieces[id];
    starts_with_meta_[id] = p.starts_with(meta_) && m_.bytes[id].starts_with(' ');
    size_t k = 0;
    while (p.compare(k, meta_.size(), meta_) == 0) k += meta_.size();
    if (p.find(meta_, k) != std::string::npos && m_.symbols.count(p)) cut_before_meta_ = false;
  }
}

int32_t BpeTokenizer::symbol_id(std::string_view s) const {
  const auto it = m_.symbols.find(std::string(s));
  return it == m_.symbols.end() ? -1 : it->second;
}

std::string BpeTokenizer::normalize(std::string_view text) const {
  std::string s;
  s.reserve(text.size() + text.size() / 4 + meta_.size());
  if (m_.remove_extra_whitespaces) {
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  }
  if (text.empty()) return s;
  if (m_.dummy_prefix == DummyPrefix::Always || (m_.dummy_prefix == DummyPrefix::UnlessSpace && text[0] != ' '))
    s += meta_;
  for (size_t i = 0; i < text.size();) {
    const size_t n = m_.byte_level ? 1 : utf8_length(text, i);
    if (text[i] == ' ') {
      if (!m_.remove_extra_whitespaces || text[i - 1] != ' ') s += meta_;  // i > 0: leading spaces are gone
    } else if (n == 1 && !m_.byte_level && static_cast<unsigned char>(text[i]) >= 0x80) {
      s += "\xEF\xBF\xBD";  // as SentencePiece, a malformed UTF-8 byte becomes U+FFFD
    } else {
      s.append(text, i, n);
    }
    i += n;
  }
  return s;
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3);
  Cache cache;
  const std::string s = normalize(text);
  const std::string_view all(s);
  if (m_.split != PreSplit::None) {
    for (std::string_view word : pre_split(all, m_.split, m_.max_digits)) encode_word(word, cache, out);
    return out;
  }
  if (!cut_before_meta_) {
    if (!all.empty()) encode_word(all, cache, out);
    return out;
  }
  size_t begin = 0;
  for (size_t i = 0; i < all.size();) {  // a word: a run of space symbols, then everything up to the next one
    if (all.compare(i, meta_.size(), meta_) == 0) {
      if (i > begin && all.compare(i - meta_.size(), meta_.size(), meta_) != 0) {
        encode_word(all.substr(begin, i - begin), cache, out);
        begin = i;
      }
      i += meta_.size();
    } else {
      i += utf8_length(all, i);
    }
  }
  if (begin < all.size()) encode_word(all.substr(begin), cache, out);
  return out;
}

void BpeTokenizer::encode_word(std::string_view word, Cache& cache, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  const bool cacheable = word.size() <= 64;
  if (cacheable) {
    const auto hit = cache.find(std::string(word));
    if (hit != cache.end()) {
      out.insert(out.end(), hit->second.begin(), hit->second.end());
      return;
    }
  }
  const size_t first_out = out.size();
  std::vector<Symbol> symbols;
  for (size_t i = 0; i < word.size();) {
    const size_t n = m_.byte_level ? 1 : utf8_length(word, i);
    const int32_t id = n == 1 ? single_byte_ids_[static_cast<unsigned char>(word[i])] : symbol_id(word.substr(i, n));
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, uint32_t(i), uint32_t(n), index - 1, index + 1});
    i += n;
  }
  symbols.back().next = -1;

  int32_t whole = -1;
  if (m_.ignore_merges) {
    std::string spelled;
    for (char c : word)
      spelled += m_.byte_level ? byte_level_chars()[static_cast<unsigned char>(c)] : std::string(1, c);
    whole = symbol_id(spelled);
  }
  if (whole >= 0) {
    out.push_back(whole);
  } else {
    std::priority_queue<Candidate> heap;
    auto consider = [&](int32_t left) {
      if (left < 0) return;
      const int32_t right = symbols[left].next;
      if (right < 0 || symbols[left].id < 0 || symbols[right].id < 0) return;
      const auto it = merges_.find(pair_key(symbols[left].id, symbols[right].id));
      if (it == merges_.end()) return;
      heap.push(
          {it->second.first, symbols[left].start, left, right, symbols[left].id, symbols[right].id, it->second.second});
    };
    for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) consider(i);
    while (!heap.empty()) {
      const Candidate c = heap.top();
      heap.pop();
      Symbol& left = symbols[c.left];
      Symbol& right = symbols[c.right];
      if (left.length == 0 || right.length == 0 || left.next != c.right || left.id != c.left_id ||
          right.id != c.right_id)
        continue;  // stale: one side was merged into something else since
      left.id = c.merged;
      left.length += right.length;
      left.next = right.next;
      right.length = 0;
      if (left.next >= 0) symbols[left.next].prev = c.left;
      consider(left.prev);
      consider(c.left);
    }
    for (int32_t i = 0; i >= 0; i = symbols[i].next) {
      const Symbol& s = symbols[i];
      if (s.id >= 0) {
        out.push_back(s.id);
      } else if (m_.byte_fallback) {
        for (uint32_t k = 0; k < s.length; ++k)
          out.push_back(m_.byte_ids[static_cast<unsigned char>(word[s.start + k])]);
      } else {
        RINGKV_REQUIRE(m_.unk_id >= 0, m_.source + " has no token for a character of the text and no unknown token");
        out.push_back(m_.unk_id);
      }
    }
  }
  if (cacheable) cache.emplace(std::string(word), std::vector<int32_t>(out.begin() + first_out, out.end()));
}

std::string BpeTokenizer::token_bytes(int32_t previous, int32_t id) const {
  RINGKV_REQUIRE(id >= 0 && id < vocab_size_, "token id " + std::to_string(id) + " is outside the vocabulary of " +
                                                  std::to_string(vocab_size_) + " (" + m_.source + ")");
  if (id == bos_id_ || id == eos_id_) return {};
  // SentencePiece-style decoding drops the space the dummy prefix added in front of the first word.
  const bool first = previous < 0 || previous == bos_id_;
  if (first && m_.dummy_prefix != DummyPrefix::None && starts_with_meta_[id]) return m_.bytes[id].substr(1);
  return m_.bytes[id];
}

}  // namespace

// Printable bytes stand for themselves, the others for U+0100 onwards in byte order.
const std::array<std::string, 256>& byte_level_chars() {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
      const int cp = printable ? b : next++;
      t[b] = cp < 0x80 ? std::string(1, char(cp)) : std::string{char(0xC0 | (cp >> 6)), char(0x80 | (cp & 0x3F))};
    }
    return t;
  }();
  return table;
}

std::unique_ptr<Tokenizer> make_bpe_tokenizer(BpeModel model) {
  return std::make_unique<BpeTokenizer>(std::move(model));
}

void add_concatenation_merges(BpeModel& model, const std::vector<float>& scores) {
  RINGKV_REQUIRE(scores.size() == model.pieces.size(), model.source + ": scores do not cover the vocabulary");
  for (const auto& [text, id] : model.symbols) {
    for (size_t k = 1; k < text.size(); ++k) {
      if ((static_cast<unsigned char>(text[k]) & 0xC0) == 0x80) continue;  // symbols are whole characters
      const auto left = model.symbols.find(text.substr(0, k));
      const auto right = model.symbols.find(text.substr(k));
      if (left != model.symbols.end() && right != model.symbols.end())
        model.merges.push_back({left->second, right->second, id, scores.at(id)});
    }
  }
}

}  // namespace ringkv
