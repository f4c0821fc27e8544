#include "kvstore/codec_spec.hpp"

#include <cctype>
#include <charconv>
#include <cstdlib>

#include "kernels/error.hpp"

namespace ringkv {

const char* role_name(Role role) { return role == Role::Key ? "K" : "V"; }

namespace {
std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}
}  // namespace

CodecSpec CodecSpec::parse(const std::string& raw) {
  const std::string text = trim(raw);
  RINGKV_REQUIRE(!text.empty(), "empty codec spec");
  CodecSpec spec;
  const size_t colon = text.find(':');
  spec.name_ = trim(text.substr(0, colon));
  RINGKV_REQUIRE(!spec.name_.empty(), "codec spec '" + text + "' has no codec name");
  if (colon == std::string::npos) return spec;
  const std::string rest = text.substr(colon + 1);
  size_t pos = 0;
  while (pos <= rest.size()) {
    const size_t comma = rest.find(',', pos);
    const std::string item = trim(rest.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
    if (!item.empty()) {
      const size_t eq = item.find('=');
      RINGKV_REQUIRE(eq != std::string::npos && eq > 0 && eq + 1 < item.size(),
                     "codec spec '" + text + "': parameter '" + item + "' is not key=value");
      const std::string key = trim(item.substr(0, eq));
      RINGKV_REQUIRE(!spec.params_.count(key), "codec spec '" + text + "' repeats parameter '" + key + "'");
      spec.params_[key] = trim(item.substr(eq + 1));
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return spec;
}

std::string CodecSpec::text() const {
  std::string out = name_;
  char sep = ':';
  for (const auto& [k, v] : params_) {
    out += sep + k + "=" + v;
    sep = ',';
  }
  return out;
}

int CodecSpec::get_int(const std::string& key, int fallback, int min_value, int max_value) const {
  used_.insert(key);
  auto it = params_.find(key);
  int value = fallback;
  if (it != params_.end()) {
    const std::string& s = it->second;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    RINGKV_REQUIRE(ec == std::errc() && end == s.data() + s.size(),
                   "codec spec '" + text() + "': " + key + "=" + s + " is not an integer");
  }
  RINGKV_REQUIRE(value >= min_value && value <= max_value,
                 "codec spec '" + text() + "': " + key + "=" + std::to_string(value) + " is outside [" +
                     std::to_string(min_value) + ", " + std::to_string(max_value) + "]");
  return value;
}

double CodecSpec::get_double(const std::string& key, double fallback, double min_value, double max_value) const {
  used_.insert(key);
  auto it = params_.find(key);
  double value = fallback;
  if (it != params_.end()) {
    char* end = nullptr;
    value = std::strtod(it->second.c_str(), &end);
    RINGKV_REQUIRE(end && *end == '\0' && !it->second.empty(),
                   "codec spec '" + text() + "': " + key + "=" + it->second + " is not a number");
  }
  RINGKV_REQUIRE(value >= min_value && value <= max_value,
                 "codec spec '" + text() + "': " + key + "=" + std::to_string(value) + " is outside [" +
                     std::to_string(min_value) + ", " + std::to_string(max_value) + "]");
  return value;
}

std::string CodecSpec::get_choice(const std::string& key, const std::string& fallback,
                                  const std::set<std::string>& allowed) const {
  used_.insert(key);
  auto it = params_.find(key);
  const std::string value = it == params_.end() ? fallback : it->second;
  if (!allowed.count(value)) {
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    fail("codec spec '" + text() + "': " + key + "=" + value + " is not one of " + list, __FILE__, __LINE__);
  }
  return value;
}

void CodecSpec::reject_unused() const {
  for (const auto& [k, v] : params_)
    RINGKV_REQUIRE(used_.count(k), "codec spec '" + text() + "': unknown parameter '" + k + "' for codec " + name_);
}

KVSpec KVSpec::parse(const std::string& text) {
  const size_t bar = text.find('|');
  if (bar == std::string::npos) {
    CodecSpec both = CodecSpec::parse(text);
    return {both, both};
  }
  RINGKV_REQUIRE(text.find('|', bar + 1) == std::string::npos, "KV spec '" + text + "' has more than one '|'");
  return {CodecSpec::parse(text.substr(0, bar)), CodecSpec::parse(text.substr(bar + 1))};
}

std::string KVSpec::text() const {
  const std::string k = key.text(), v = value.text();
  return k == v ? k : k + "|" + v;
}

}  // namespace ringkv
