// SentencePiece .model files: a protobuf ModelProto read from its wire format (no protobuf dependency).
// Only the fields the BPE encoder needs are read; the rest are skipped by wire type.
//   ModelProto      1: pieces (repeated {1: piece, 2: score, 3: type}), 2: trainer_spec, 3: normalizer_spec
//   TrainerSpec     3: model_type (1 unigram, 2 BPE), 35: byte_fallback, 40/41/42: unk/bos/eos id
//   NormalizerSpec  1: name, 2: precompiled_charsmap, 3: add_dummy_prefix, 4: remove_extra_whitespaces,
//                   5: escape_whitespaces
#include <cstdio>
#include <cstring>

#include "kernels/error.hpp"
#include "runtime/safetensors.hpp"
#include "runtime/tokenizer.hpp"

namespace ringkv {
namespace {

enum PieceType { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

// One protobuf message: a cursor over its fields that refuses anything running past its end.
class ProtoReader {
 public:
  ProtoReader(const uint8_t* begin, const uint8_t* end, const std::string& path) : p_(begin), end_(end), path_(path) {}
  bool done() const { return p_ == end_; }

  // The next field's number and wire type.
  std::pair<uint32_t, uint32_t> tag() {
    const uint64_t t = varint();
    RINGKV_REQUIRE((t >> 3) > 0 && (t >> 3) < (1u << 29), path_ + " is corrupt: bad protobuf field tag");
    return {uint32_t(t >> 3), uint32_t(t & 7)};
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      RINGKV_REQUIRE(p_ < end_, path_ + " is truncated inside a protobuf varint");
      const uint8_t b = *p_++;
      v |= uint64_t(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    fail(path_ + " is corrupt: a protobuf varint is longer than 10 bytes", __FILE__, __LINE__);
  }
  ProtoReader message() {
    const uint64_t n = varint();
    RINGKV_REQUIRE(n <= uint64_t(end_ - p_),
                   path_ + " is truncated: a protobuf field of " + std::to_string(n) + " bytes runs past its message");
    const uint8_t* begin = p_;
    p_ += n;
    return ProtoReader(begin, p_, path_);
  }
  std::string bytes() {
    const ProtoReader m = message();
    return std::string(reinterpret_cast<const char*>(m.p_), m.end_ - m.p_);
  }
  float fixed32_float() {
    RINGKV_REQUIRE(end_ - p_ >= 4, path_ + " is truncated inside a protobuf float");
    float f;
    std::memcpy(&f, p_, 4);
    p_ += 4;
    return f;
  }
  void skip(uint32_t wire_type) {
    if (wire_type == 0) {
      varint();
    } else if (wire_type == 2) {
      message();
    } else {
      const size_t n = wire_type == 1 ? 8 : wire_type == 5 ? 4 : 0;
      RINGKV_REQUIRE(n > 0, path_ + " is corrupt: protobuf wire type " + std::to_string(wire_type));
      RINGKV_REQUIRE(size_t(end_ - p_) >= n, path_ + " is truncated inside a protobuf field");
      p_ += n;
    }
  }
  void expect(uint32_t wire_type, uint32_t want, const char* field) {
    RINGKV_REQUIRE(wire_type == want, path_ + " is corrupt: field " + field + " has the wrong protobuf wire type");
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
  const std::string& path_;
};

struct Piece {
  std::string text;
  float score = 0;
  int type = kNormal;
};

}  // namespace

std::unique_ptr<Tokenizer> load_sentencepiece_model(const std::string& path, int32_t expected_vocab_size) {
  const MappedFile file(path);
  ProtoReader model(file.data(), file.data() + file.size(), path);
  std::vector<Piece> pieces;
  int model_type = 1;
  bool byte_fallback = false, add_dummy_prefix = true, remove_extra_whitespaces = true, escape_whitespaces = true;
  int32_t unk = 0, bos = 1, eos = 2;
  std::string normalizer_name = "identity", charsmap;
  while (!model.done()) {
    const auto [field, wire] = model.tag();
    if (field == 1) {
      model.expect(wire, 2, "pieces");
      ProtoReader m = model.message();
      Piece& piece = pieces.emplace_back();
      while (!m.done()) {
        const auto [f, w] = m.tag();
        if (f == 1)
          m.expect(w, 2, "piece"), piece.text = m.bytes();
        else if (f == 2)
          m.expect(w, 5, "score"), piece.score = m.fixed32_float();
        else if (f == 3)
          m.expect(w, 0, "type"), piece.type = int(m.varint());
        else
          m.skip(w);
      }
    } else if (field == 2) {
      model.expect(wire, 2, "trainer_spec");
      ProtoReader m = model.message();
      while (!m.done()) {
        const auto [f, w] = m.tag();
        if (f == 3)
          m.expect(w, 0, "model_type"), model_type = int(m.varint());
        else if (f == 35)
          m.expect(w, 0, "byte_fallback"), byte_fallback = m.varint() != 0;
        else if (f == 40)
          m.expect(w, 0, "unk_id"), unk = int32_t(m.varint());  // negative ids are 10-byte varints
        else if (f == 41)
          m.expect(w, 0, "bos_id"), bos = int32_t(m.varint());
        else if (f == 42)
          m.expect(w, 0, "eos_id"), eos = int32_t(m.varint());
        else
          m.skip(w);
      }
    } else if (field == 3) {
      model.expect(wire, 2, "normalizer_spec");
      ProtoReader m = model.message();
      while (!m.done()) {
        const auto [f, w] = m.tag();
        if (f == 1)
          m.expect(w, 2, "name"), normalizer_name = m.bytes();
        else if (f == 2)
          m.expect(w, 2, "precompiled_charsmap"), charsmap = m.bytes();
        else if (f == 3)
          m.expect(w, 0, "add_dummy_prefix"), add_dummy_prefix = m.varint() != 0;
        else if (f == 4)
          m.expect(w, 0, "remove_extra_whitespaces"), remove_extra_whitespaces = m.varint() != 0;
        else if (f == 5)
          m.expect(w, 0, "escape_whitespaces"), escape_whitespaces = m.varint() != 0;
        else
          m.skip(w);
      }
    } else {
      model.skip(wire);
    }
  }
  RINGKV_REQUIRE(!pieces.empty(), path + " has no pieces (truncated, or not a SentencePiece model?)");
  RINGKV_REQUIRE(model_type == 2, path + " is a SentencePiece " + (model_type == 1 ? "unigram" : "non-BPE") +
                                      " model; RingKV implements the BPE model only");
  RINGKV_REQUIRE(charsmap.empty(), path + " normalizes text with rule '" + normalizer_name +
                                       "'; RingKV implements the identity normalization only");
  const auto n = static_cast<int32_t>(pieces.size());
  RINGKV_REQUIRE(expected_vocab_size < 0 || n <= expected_vocab_size,
                 path + " has " + std::to_string(n) + " pieces, more than the model's vocabulary of " +
                     std::to_string(expected_vocab_size));

  BpeModel bpe;
  bpe.source = path;
  bpe.space = escape_whitespaces ? "\xE2\x96\x81" : "";  // U+2581 "▁"
  bpe.dummy_prefix = add_dummy_prefix ? DummyPrefix::Always : DummyPrefix::None;
  bpe.remove_extra_whitespaces = remove_extra_whitespaces;
  bpe.byte_fallback = byte_fallback;
  bpe.unk_id = unk, bpe.bos_id = bos, bpe.eos_id = eos;
  bpe.byte_ids.fill(-1);
  for (int32_t id = 0; id < n; ++id) {
    const Piece& p = pieces[id];
    RINGKV_REQUIRE(p.type >= kNormal && p.type <= kByte,
                   path + ": piece " + std::to_string(id) + " has unknown type " + std::to_string(p.type));
    bpe.pieces.push_back(p.text);
    std::string text = p.text;
    if (p.type == kByte) {
      unsigned value = 256;
      RINGKV_REQUIRE(p.text.size() == 6 && std::sscanf(p.text.c_str(), "<0x%2X>", &value) == 1 && value < 256,
                     path + ": byte piece " + std::to_string(id) + " is not spelled <0xXX>");
      bpe.byte_ids[value] = id;
      text = std::string(1, char(value));
    } else if (p.type == kControl) {
      text.clear();
    } else if (p.type == kUnknown) {
      text = " \xE2\x81\x87 ";  // SentencePiece shows unknown text as " ⁇ "
    } else {
      // Unused pieces take part in merges here; SentencePiece would split them again (none in Llama 2).
      bpe.symbols.emplace(p.text, id);
      text = replace_all(text, "\xE2\x96\x81", " ");
    }
    bpe.bytes.push_back(std::move(text));
  }
  if (byte_fallback) {
    for (int b = 0; b < 256; ++b)
      RINGKV_REQUIRE(bpe.byte_ids[b] >= 0, path + " has byte_fallback but no piece for byte " + std::to_string(b));
  }
  std::vector<float> scores;
  for (const Piece& p : pieces) scores.push_back(p.score);
  add_concatenation_merges(bpe, scores);
  return make_bpe_tokenizer(std::move(bpe));
}

}  // namespace ringkv
