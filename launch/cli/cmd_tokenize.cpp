// ringkv tokenize: the token ids of a text under a model's tokenizer.
#include <iostream>

#include "comm/communicator.hpp"
#include "kernels/error.hpp"
#include "launch/cli/commands.hpp"
#include "launch/cli/model_options.hpp"

namespace ringkv::cli {

int run_tokenize(const std::vector<std::string>& args) {
  ModelOptions m;
  std::string text, text_path;
  bool bos = false;
  CLI::App app{"Print the token ids of a text under a model's tokenizer", "ringkv tokenize"};
  app.add_option("--model", m.model, "model folder (its tokenizer.json or tokenizer.model is used)");
  app.add_option("--tokenizer", m.tokenizer, "tokenizer file instead of the model folder's");
  app.add_option("--prompt", text, "text to tokenize");
  app.add_option("--text", text_path, "file to tokenize");
  app.add_flag("--bos", bos, "start with the BOS token");
  if (!parse_options(app, args)) return 0;
  RINGKV_REQUIRE(text.empty() != text_path.empty(), "ringkv tokenize: give one of --prompt and --text");
  RINGKV_REQUIRE(!m.model.empty() || !m.tokenizer.empty(), "ringkv tokenize: give --model or --tokenizer");
  if (Communicator::world().rank() != 0) return 0;
  const auto tokenizer = ringkv::load_tokenizer(m.tokenizer.empty() ? m.model : m.tokenizer);
  std::vector<int32_t> ids;
  if (bos && tokenizer->bos_id() >= 0) ids.push_back(tokenizer->bos_id());
  const std::vector<int32_t> body = tokenizer->encode(text.empty() ? read_text_file(text_path) : text);
  ids.insert(ids.end(), body.begin(), body.end());
  for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
  std::cout << "\n";
  return 0;
}

}  // namespace ringkv::cli
