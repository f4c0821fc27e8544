#pragma once
// Codec spec strings: "name:key=value,key=value". A KV spec is one codec spec for keys and values
// alike, or "KEYSPEC|VALUESPEC" for different settings per role.
#include <map>
#include <set>
#include <string>

namespace ringkv {

enum class Role : unsigned char { Key = 0, Value = 1 };
const char* role_name(Role role);

class CodecSpec {
 public:
  static CodecSpec parse(const std::string& text);

  const std::string& name() const { return name_; }
  // Canonical text: name, then parameters sorted by key. Two specs are equal iff their texts are.
  std::string text() const;

  // Typed getters: record the key as used and check the value; a malformed value throws.
  int get_int(const std::string& key, int fallback, int min_value, int max_value) const;
  double get_double(const std::string& key, double fallback, double min_value, double max_value) const;
  std::string get_choice(const std::string& key, const std::string& fallback, const std::set<std::string>& allowed) const;
  // Throws naming any parameter that no getter asked for (catches typos such as "bit=2").
  void reject_unused() const;

 private:
  std::string name_;
  std::map<std::string, std::string> params_;
  mutable std::set<std::string> used_;
};

struct KVSpec {
  CodecSpec key;
  CodecSpec value;
  static KVSpec parse(const std::string& text);
  std::string text() const;  // "K" when both roles agree, else "K|V"
};

}  // namespace ringkv
