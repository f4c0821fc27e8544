// The GPT-2 and Llama 3 pre-tokenizer regular expressions, matched by hand (std::regex knows neither
// \p{L} nor a locale-free Unicode). The patterns, alternatives tried in order at each position:
//   GPT-2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   Llama 3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
//            \s*[\r\n]+|\s+(?!\S)|\s+          (Qwen 2: \p{N} one digit at a time)
// Classification is ASCII plus an approximation: non-ASCII code points are letters unless they are
// Unicode spaces, so non-ASCII digits and punctuation group with letters.
#include "runtime/tokenizer.hpp"

namespace ringkv {
namespace {

enum class Kind { Letter, Number, Space, Other };

struct Char {
  Kind kind;
  uint32_t cp;
  size_t length;
};

Kind classify(uint32_t cp) {
  if (cp < 0x80) {
    if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return Kind::Letter;
    if (cp >= '0' && cp <= '9') return Kind::Number;
    if (cp == ' ' || (cp >= '\t' && cp <= '\r')) return Kind::Space;
    return Kind::Other;
  }
  const bool space = cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
                     cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
  return space ? Kind::Space : Kind::Letter;
}

// The character at s[i]; a malformed byte is one character of its own, classified as a letter.
Char char_at(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size()) return {Kind::Letter, c, 1};
  uint32_t cp = n == 1 ? c : c & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xC0) != 0x80) return {Kind::Letter, c, 1};
    cp = (cp << 6) | (b(k) & 0x3F);
  }
  return {classify(cp), cp, n};
}

class Matcher {
 public:
  Matcher(std::string_view s, PreSplit split, int max_digits)
      : s_(s), llama3_(split == PreSplit::Llama3), max_digits_(max_digits) {}

  // Length of the match starting at i (at least one character).
  size_t match(size_t i) const {
    if (size_t n = contraction(i)) return n;
    const Char c = at(i);
    const size_t after = i + c.length;
    if (llama3_) {
      // [^\r\n\p{L}\p{N}]?\p{L}+
      if (c.kind != Kind::Letter && c.kind != Kind::Number && c.cp != '\r' && c.cp != '\n' && is(after, Kind::Letter))
        return run(after, Kind::Letter) - i;
      if (c.kind == Kind::Letter) return run(i, Kind::Letter) - i;
      if (c.kind == Kind::Number) return run(i, Kind::Number, max_digits_) - i;
    } else {
      for (Kind k : {Kind::Letter, Kind::Number}) {  // ' ?\p{L}+' and ' ?\p{N}+'
        if (c.cp == ' ' && is(after, k)) return run(after, k) - i;
        if (c.kind == k) return run(i, k) - i;
      }
    }
    // ' ?[^\s\p{L}\p{N}]+', in Llama 3 followed by '[\r\n]*'
    const size_t other = c.cp == ' ' && is(after, Kind::Other) ? after : i;
    if (is(other, Kind::Other)) {
      size_t end = run(other, Kind::Other);
      while (llama3_ && end < s_.size() && (s_[end] == '\r' || s_[end] == '\n')) ++end;
      return end - i;
    }
    // c is whitespace. Llama 3's '\s*[\r\n]+' ends after the last newline of the run.
    const size_t end = run(i, Kind::Space);
    if (llama3_) {
      for (size_t k = end; k > i; --k)
        if (s_[k - 1] == '\r' || s_[k - 1] == '\n') return k - i;
    }
    // '\s+(?!\S)' leaves the run's last character to the next word; '\s+' takes a lone one.
    if (end == s_.size()) return end - i;
    size_t last = i;
    for (size_t k = i; k < end; k += at(k).length) last = k;
    return last > i ? last - i : end - i;
  }

 private:
  Char at(size_t i) const { return char_at(s_, i); }
  bool is(size_t i, Kind k) const { return i < s_.size() && at(i).kind == k; }
  size_t run(size_t i, Kind k, int limit = -1) const {
    for (int n = 0; is(i, k) && n != limit; ++n) i += at(i).length;
    return i;
  }
  size_t contraction(size_t i) const {
    if (s_[i] != '\'' || i + 1 >= s_.size()) return 0;
    auto lower = [&](size_t k) { return k < s_.size() ? char(llama3_ ? s_[k] | 0x20 : s_[k]) : '\0'; };
    const char a = lower(i + 1), b = lower(i + 2);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
  }

  std::string_view s_;
  bool llama3_;
  int max_digits_;
};

}  // namespace

std::vector<std::string_view> pre_split(std::string_view text, PreSplit split, int max_digits) {
  std::vector<std::string_view> words;
  if (split == PreSplit::None) {
    if (!text.empty()) words.push_back(text);
    return words;
  }
  const Matcher matcher(text, split, max_digits);
  for (size_t i = 0; i < text.size();) {
    const size_t n = matcher.match(i);
    words.push_back(text.substr(i, n));
    i += n;
  }
  return words;
}

}  // namespace ringkv
