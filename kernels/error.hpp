#pragma once
// One error type and one checking macro for the whole product: every failure names what failed and where.
#include <stdexcept>
#include <string>

namespace ringkv {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void fail(const std::string& what, const char* file, int line) {
  throw Error(what + " (" + file + ":" + std::to_string(line) + ")");
}

}  // namespace ringkv

// RINGKV_REQUIRE(condition, message): throws ringkv::Error naming the message, file and line.
#define RINGKV_REQUIRE(cond, msg)                                   \
  do {                                                              \
    if (!(cond)) ::ringkv::fail(std::string(msg), __FILE__, __LINE__); \
  } while (0)
