// Tokenizers: the Llama 2 SentencePiece model of reftiny-14m against ids from Debian's SentencePiece
// 0.1.97 (embedded for short strings; spm_encode, when on PATH, for the long texts), and small
// hand-checkable tokenizer.json and llama2.c tokenizer.bin files written here, damaged ones included.
// Real files come from $RINGKV_MODELS / $RINGKV_DATA or ../shared beside the checkout; tests that need
// them skip without them.
#include "runtime/tokenizer.hpp"
#include "test_util.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "kernels/error.hpp"

namespace ringkv {
namespace {

namespace fs = std::filesystem;
using Ids = std::vector<int32_t>;

std::string reftiny_model() { return test::models_dir() + "/reftiny-14m/tokenizer.model"; }
std::string data_file(const std::string& name) { return test::data_dir() + "/" + name; }

// A file in the temporary directory named after the running test.
std::string temp_file(const std::string& name) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const fs::path dir =
      fs::temp_directory_path() / ("ringkv_" + std::string(info->test_suite_name()) + "_" + info->name());
  fs::create_directories(dir);
  return (dir / name).string();
}

std::string write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

// Decoding token by token, as generation streams them, gives decode().
void expect_streams_like_decode(const Tokenizer& tok, const Ids& ids) {
  std::string streamed;
  int32_t previous = -1;
  for (int32_t id : ids) streamed += tok.token_bytes(previous, id), previous = id;
  EXPECT_EQ(streamed, tok.decode(ids));
}

template <class F>
void expect_refused(F load, const std::string& path, const std::string& why) {
  try {
    load();
    ADD_FAILURE() << path << " was accepted; expected a refusal mentioning '" << why << "'";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find(why), std::string::npos) << message;
  }
}

TEST(TokenizerSentencePiece, MatchesSentencePieceOnShortStrings) {
  RINGKV_REQUIRE_FILE(reftiny_model());
  const auto tok = load_tokenizer(reftiny_model(), 32000);
  EXPECT_EQ(tok->vocab_size(), 32000);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  const std::vector<std::pair<std::string, Ids>> golden = {
      {"Hello world", {15043, 3186}},
      {"Hello, world! How are you?", {15043, 29892, 3186, 29991, 1128, 526, 366, 29973}},
      {"  leading spaces", {259, 8236, 8162}},
      {"trailing spaces   ", {25053, 8162, 1678}},
      {"multiple   inner    spaces", {2999, 259, 6426, 1678, 8162}},
      {"line one\nline two\n\nline four\n", {1196, 697, 13, 1220, 1023, 13, 13, 1220, 3023, 13}},
      {"\nstarts with a newline", {29871, 13, 27382, 411, 263, 25899}},
      {"digits 1234567890 and 3.14159", {13340, 29871, 29896, 29906, 29941, 29946, 29945, 29953, 29955, 29947, 29929,
                                         29900, 322,   29871, 29941, 29889, 29896, 29946, 29896, 29945, 29929}},
      {"punctuation: (a) [b] {c} <d> \"e\" 'f' ; ! ? -- ...",
       {6035,  22999, 362, 29901, 313,   29874, 29897, 518,   29890, 29962, 426,  29883, 29913, 529,
        29881, 29958, 376, 29872, 29908, 525,   29888, 29915, 2056,  1738,  1577, 1192,  2023}},
      {"café naïve résumé über", {274, 28059, 1055, 30085, 345, 6896, 398, 29948, 2939}},
      {"中文字符 日本語", {29871, 30275, 30333, 30578, 31277, 29871, 30325, 30346, 30968}},
      {"emoji 😀 and 🧬!", {953, 29877, 2397, 29871, 243, 162, 155, 131, 322, 29871, 243, 162, 170, 175, 29991}},
      {"tab\there", {4434, 12, 4150}},
      {" ", {259}},
      {"a", {263}},
      {"<s> is text, not BOS", {529, 29879, 29958, 338, 1426, 29892, 451, 350, 3267}},
      {"In the beginning God created the heaven and the earth.",
       {512, 278, 6763, 4177, 2825, 278, 18356, 322, 278, 8437, 29889}},
  };
  for (const auto& [text, ids] : golden) {
    EXPECT_EQ(tok->encode(text), ids) << text;
    EXPECT_EQ(tok->decode(ids), text);
    Ids with_bos = {1};
    with_bos.insert(with_bos.end(), ids.begin(), ids.end());
    with_bos.push_back(2);
    EXPECT_EQ(tok->decode(with_bos), text);
    expect_streams_like_decode(*tok, with_bos);
  }
  EXPECT_TRUE(tok->encode("").empty());
  EXPECT_EQ(tok->token_bytes(-1, 3186), "world");  // the dummy-prefix space goes at the start only
  EXPECT_EQ(tok->token_bytes(15043, 3186), " world");
  EXPECT_EQ(tok->token_bytes(3186, 13), "\n");  // <0x0A>
  EXPECT_THROW(tok->token_bytes(-1, 32000), Error);
  EXPECT_THROW(tok->token_bytes(-1, -1), Error);
}

TEST(TokenizerSentencePiece, LoadsFromTheModelFolder) {
  RINGKV_REQUIRE_FILE(reftiny_model());
  const auto tok = load_tokenizer(fs::path(reftiny_model()).parent_path().string(), 32000);
  EXPECT_EQ(tok->encode("Hello world"), (Ids{15043, 3186}));
}

// The first lines of the real texts, line by line against spm_encode (which encodes each input line on
// its own), and the whole of each text back from decode().
TEST(TokenizerSentencePiece, MatchesSpmEncodeOnTheRealTexts) {
  RINGKV_REQUIRE_FILE(reftiny_model());
  const auto tok = load_tokenizer(reftiny_model(), 32000);
  const bool have_spm_encode = std::system("command -v spm_encode > /dev/null 2>&1") == 0;
  for (const char* name : {"kjv-new-testament.txt", "gcide-calibration.txt"}) {
    RINGKV_REQUIRE_FILE(data_file(name));
    const std::string text = test::read_file(data_file(name));
    EXPECT_EQ(tok->decode(tok->encode(text)), text) << name;
    if (!have_spm_encode) continue;
    const std::string head = text.substr(0, text.rfind('\n', 6000) + 1);
    const std::string in = write_file(temp_file(std::string(name) + ".head"), head), out = in + ".ids";
    const std::string command =
        "spm_encode --model='" + reftiny_model() + "' --output_format=id < '" + in + "' > '" + out + "'";
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
    std::istringstream lines(head), oracle(test::read_file(out));
    std::string line, expected;
    int compared = 0;
    while (std::getline(lines, line)) {
      ASSERT_TRUE(std::getline(oracle, expected)) << "spm_encode gave fewer lines than " << name << " has";
      std::string mine;
      for (int32_t id : tok->encode(line)) mine += (mine.empty() ? "" : " ") + std::to_string(id);
      EXPECT_EQ(mine, expected) << name << ": " << line;
      ++compared;
    }
    EXPECT_GT(compared, 50);
  }
  if (!have_spm_encode)
    GTEST_SKIP() << "spm_encode is not on PATH (apt-get install sentencepiece): checked round trips only";
}

TEST(TokenizerSentencePiece, EncodesTheNewTestamentQuickly) {
  RINGKV_REQUIRE_FILE(reftiny_model());
  RINGKV_REQUIRE_FILE(data_file("kjv-new-testament.txt"));
  const auto tok = load_tokenizer(reftiny_model(), 32000);
  const std::string text = test::read_file(data_file("kjv-new-testament.txt"));
  const auto start = std::chrono::steady_clock::now();
  const Ids ids = tok->encode(text);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(ids.size(), 283248u);  // Debian's SentencePiece 0.1.97 on the whole text
  std::printf("encoded %zu tokens in %.3f s: %.0f tokens/s\n", ids.size(), seconds, ids.size() / seconds);
}

TEST(TokenizerSentencePiece, RefusesDamagedModels) {
  RINGKV_REQUIRE_FILE(reftiny_model());
  const std::string model = test::read_file(reftiny_model());
  const std::string truncated = write_file(temp_file("truncated.model"), model.substr(0, model.size() / 2));
  expect_refused([&] { load_sentencepiece_model(truncated); }, truncated, "truncated");
  const std::string varint = write_file(temp_file("varint.model"), "\x0a" + std::string(11, '\xff'));
  expect_refused([&] { load_sentencepiece_model(varint); }, varint, "varint");
  const std::string empty = write_file(temp_file("empty.model"), "");
  expect_refused([&] { load_sentencepiece_model(empty); }, empty, "no pieces");
  expect_refused([&] { load_sentencepiece_model(reftiny_model(), 1000); }, reftiny_model(), "vocabulary of 1000");
  // One piece {1: "a", 3: normal} and trainer_spec {3: unigram}.
  const std::string unigram = write_file(temp_file("unigram.model"), std::string("\x0a\x05\x0a\x01"
                                                                                 "a\x18\x01\x12\x02\x18\x01",
                                                                                 11));
  expect_refused([&] { load_sentencepiece_model(unigram); }, unigram, "unigram");
}

// A GPT-2 style byte-level BPE: ids 0-255 are the byte characters, then a few merges.
nlohmann::json byte_level_tokenizer() {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_level_chars()[b]] = b;
  const std::vector<std::string> merges = {"h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld"};
  for (const std::string& m : merges) {
    const auto space = m.find(' ');
    vocab[m.substr(0, space) + m.substr(space + 1)] = vocab.size();
  }
  vocab["lo"] = vocab.size();  // reachable only with ignore_merges
  nlohmann::json j;
  j["added_tokens"] = {{{"id", vocab.size()}, {"content", "<|endoftext|>"}, {"special", true}}};
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  j["model"] = {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}};
  return j;
}

TEST(TokenizerHfJson, EncodesByteLevelBpe) {
  EXPECT_EQ(byte_level_chars()[' '], "Ġ");  // U+0120
  EXPECT_EQ(byte_level_chars()['\n'], "Ċ");
  EXPECT_EQ(byte_level_chars()['a'], "a");
  nlohmann::json j = byte_level_tokenizer();
  const std::string path = write_file(temp_file("tokenizer.json"), j.dump());
  const auto tok = load_tokenizer(path, 300);
  EXPECT_EQ(tok->vocab_size(), 267);
  EXPECT_EQ(tok->bos_id(), -1);
  EXPECT_EQ(tok->eos_id(), 266);  // <|endoftext|>
  // ids: he 256, ll 257, hell 258, hello 259, Ġw 260, or 261, Ġwor 262, ld 263, Ġworld 264, lo 265
  const std::vector<std::pair<std::string, Ids>> cases = {
      {"hello world", {259, 264}},
      {"hello  world", {259, 32, 264}},  // GPT-2 leaves the last space of a run to the next word
      {"world", {'w', 261, 263}},        // "o r" ranks before "l d"; no "Ġ" so no "Ġw"
      {"lo", {'l', 'o'}},
      {"é!\n", {0xC3, 0xA9, '!', '\n'}},
      {"it's 12345", {'i', 't', '\'', 's', ' ', '1', '2', '3', '4', '5'}},
  };
  for (const auto& [text, ids] : cases) {
    EXPECT_EQ(tok->encode(text), ids) << text;
    EXPECT_EQ(tok->decode(ids), text);
    expect_streams_like_decode(*tok, ids);
  }
  EXPECT_EQ(tok->token_bytes(-1, 264), " world");  // byte-level decoding keeps every space
  EXPECT_EQ(tok->decode(Ids{259, 266}), "hello");

  j["model"]["ignore_merges"] = true;  // Llama 3: a word in the vocabulary is one token
  j["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"},
         {"pattern",
          {{"Regex",
            R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}}},
         {"behavior", "Isolated"},
         {"invert", false}},
        {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
  const auto llama3 = load_tokenizer(write_file(temp_file("llama3.json"), j.dump()));
  EXPECT_EQ(llama3->encode("lo"), (Ids{265}));
  EXPECT_EQ(llama3->encode("hello world"), (Ids{259, 264}));
}

TEST(TokenizerHfJson, SplitsLikeThePublishedPatterns) {
  using V = std::vector<std::string_view>;
  EXPECT_EQ(pre_split("Hello world's  123 foo!!\n", PreSplit::Gpt2, 0),
            (V{"Hello", " world", "'s", " ", " 123", " foo", "!!", "\n"}));
  EXPECT_EQ(pre_split("I'M 12345 ok\n\n  x", PreSplit::Gpt2, 0), (V{"I", "'", "M", " 12345", " ok", "\n\n ", " x"}));
  EXPECT_EQ(pre_split("I'M 12345 ok\n\n  x", PreSplit::Llama3, 3),
            (V{"I", "'M", " ", "123", "45", " ok", "\n\n", " ", " x"}));
  EXPECT_EQ(pre_split("(hi)...\r\nthere", PreSplit::Llama3, 3), (V{"(hi", ")...\r\n", "there"}));
  EXPECT_EQ(pre_split("v12", PreSplit::Llama3, 1), (V{"v", "1", "2"}));
  EXPECT_EQ(pre_split("naïve 中文", PreSplit::Llama3, 3), (V{"naïve", " 中文"}));
}

// A Llama 2 style tokenizer.json: "▁" for spaces, a dummy prefix, byte fallback.
std::string sentencepiece_style_tokenizer() {
  nlohmann::json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    vocab[name] = 3 + b;
  }
  for (const char* piece : {"▁", "a", "b", "▁a", "ab", "▁ab", "▁b"}) vocab[piece] = vocab.size();
  nlohmann::json j;
  j["added_tokens"] = {{{"id", 0}, {"content", "<unk>"}, {"special", true}},
                       {{"id", 1}, {"content", "<s>"}, {"special", true}},
                       {{"id", 2}, {"content", "</s>"}, {"special", true}}};
  j["normalizer"] = {{"type", "Sequence"},
                     {"normalizers",
                      {{{"type", "Prepend"}, {"prepend", "▁"}},
                       {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "▁"}}}}};
  j["pre_tokenizer"] = nullptr;
  nlohmann::json merges = nlohmann::json::array();  // [a, b] pairs (a braced list of pairs would be an object)
  for (const auto& [left, right] : {std::pair{"▁", "a"}, {"a", "b"}, {"▁a", "b"}, {"▁", "b"}})
    merges.push_back(nlohmann::json::array({left, right}));
  j["model"] = {{"type", "BPE"}, {"vocab", vocab}, {"unk_token", "<unk>"}, {"byte_fallback", true}, {"merges", merges}};
  return j.dump();
}

TEST(TokenizerHfJson, EncodesSentencePieceStyleBpe) {
  const std::string path = write_file(temp_file("tokenizer.json"), sentencepiece_style_tokenizer());
  write_file(temp_file("tokenizer_config.json"), R"({"bos_token": "<s>", "eos_token": {"content": "</s>"}})");
  const auto tok = load_tokenizer(fs::path(path).parent_path().string());
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  // ids: ▁ 259, a 260, b 261, ▁a 262, ab 263, ▁ab 264, ▁b 265
  EXPECT_EQ(tok->encode("ab ba"), (Ids{264, 265, 260}));  // "▁ a" ranks first: ▁a, then ▁ab
  EXPECT_EQ(tok->encode("ac"), (Ids{262, 3 + 'c'}));      // c falls back to <0x63>
  EXPECT_EQ(tok->encode(" a"), (Ids{259, 262}));
  for (const std::string text : {"ab ba", "ac", " a", "b\xC3\xA9"}) {
    const Ids ids = tok->encode(text);
    EXPECT_EQ(tok->decode(ids), text);
    expect_streams_like_decode(*tok, ids);
  }
  EXPECT_EQ(tok->token_bytes(-1, 264), "ab");
  EXPECT_EQ(tok->token_bytes(1, 264), "ab");
  EXPECT_EQ(tok->token_bytes(260, 264), " ab");
}

TEST(TokenizerHfJson, RefusesDamagedFiles) {
  const std::string good = sentencepiece_style_tokenizer();
  const std::string truncated = write_file(temp_file("truncated.json"), good.substr(0, good.size() / 2));
  expect_refused([&] { load_hf_tokenizer(truncated); }, truncated, "truncated");
  const std::string big = write_file(temp_file("big.json"), good);
  expect_refused([&] { load_hf_tokenizer(big, 100); }, big, "vocabulary of 100");
  nlohmann::json j = nlohmann::json::parse(good);
  j["model"]["merges"].push_back(nlohmann::json::array({"a", "zz"}));
  const std::string merge = write_file(temp_file("merge.json"), j.dump());
  expect_refused([&] { load_hf_tokenizer(merge); }, merge, "not in the vocabulary");
  j = nlohmann::json::parse(good);
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  const std::string whitespace = write_file(temp_file("whitespace.json"), j.dump());
  expect_refused([&] { load_hf_tokenizer(whitespace); }, whitespace, "does not implement");
  j = nlohmann::json::parse(good);
  j["model"]["type"] = "Unigram";
  const std::string unigram = write_file(temp_file("unigram.json"), j.dump());
  expect_refused([&] { load_hf_tokenizer(unigram); }, unigram, "BPE tokenizers only");
}

// A llama2.c tokenizer.bin: <unk>, BOS, EOS, the 256 byte pieces, then " ", "a", "b", "ab", " a", " ab".
std::string llama2c_tokenizer(int32_t bad_length_at = -1) {
  std::vector<std::pair<std::string, float>> tokens = {{"<unk>", 0}, {"\n<s>\n", 0}, {"\n</s>\n", 0}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    tokens.emplace_back(name, 0.0f);
  }
  for (const auto& t : std::vector<std::pair<std::string, float>>{
           {" ", -10}, {"a", -10}, {"b", -10}, {"ab", -1}, {" a", -2}, {" ab", -3}})
    tokens.push_back(t);
  std::string bytes;
  auto put = [&](const void* p, size_t n) { bytes.append(static_cast<const char*>(p), n); };
  const int32_t max_length = 6;
  put(&max_length, 4);
  for (size_t id = 0; id < tokens.size(); ++id) {
    const int32_t length = int32_t(id) == bad_length_at ? -5 : int32_t(tokens[id].first.size());
    put(&tokens[id].second, 4);
    put(&length, 4);
    bytes += tokens[id].first;
  }
  return bytes;
}

TEST(TokenizerLlama2c, EncodesAndDecodes) {
  const std::string path = write_file(temp_file("tokenizer.bin"), llama2c_tokenizer());
  const auto tok = load_tokenizer(path, 265);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  // ids: " " 259, a 260, b 261, ab 262, " a" 263, " ab" 264
  EXPECT_EQ(tok->encode("ab"), (Ids{264}));  // "ab" (score -1) before " a" (-2), then " ab"
  EXPECT_EQ(tok->encode("b a"), (Ids{259, 261, 263}));
  EXPECT_EQ(tok->encode("é"), (Ids{259, 3 + 0xC3, 3 + 0xA9}));
  for (const std::string text : {"ab", "b a", "é", "  ab  "}) {
    const Ids ids = tok->encode(text);
    EXPECT_EQ(tok->decode(ids), text);
    expect_streams_like_decode(*tok, ids);
  }
  EXPECT_EQ(tok->decode(Ids{1, 264, 263, 2}), "ab a");
  EXPECT_EQ(tok->token_bytes(1, 264), "ab");
  EXPECT_EQ(tok->token_bytes(262, 264), " ab");
}

TEST(TokenizerLlama2c, RefusesDamagedFiles) {
  const std::string good = llama2c_tokenizer();
  const std::string path = write_file(temp_file("tokenizer.bin"), good);
  expect_refused([&] { load_llama2c_tokenizer(path, 264); }, path, "does not match the checkpoint's vocab_size");
  expect_refused([&] { load_llama2c_tokenizer(path, 300); }, path, "truncated");
  expect_refused([&] { load_tokenizer(path); }, path, "vocab_size");
  const std::string truncated = write_file(temp_file("truncated.bin"), good.substr(0, good.size() - 3));
  expect_refused([&] { load_llama2c_tokenizer(truncated, 265); }, truncated, "truncated");
  const std::string corrupt = write_file(temp_file("corrupt.bin"), llama2c_tokenizer(100));
  expect_refused([&] { load_llama2c_tokenizer(corrupt, 265); }, corrupt, "corrupt");
  const std::string missing = temp_file("missing.json");
  expect_refused([&] { load_tokenizer(missing); }, missing, "does not exist");
}

}  // namespace
}  // namespace ringkv
