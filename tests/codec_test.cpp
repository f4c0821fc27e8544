// Round trip, error bounds, sub-range decoding and exact sizes of every codec.
#include <gtest/gtest.h>

#include "kernels/bit_packing.hpp"
#include "kernels/error.hpp"
#include "kernels/half.hpp"
#include "kvstore/codec.hpp"
#include "test_util.hpp"

namespace ringkv {
namespace {

// Bounds hold on test::structured_rows, whose outlier channels (8x scale, offset) and 6x-norm tokens
// are deliberately harsh for per-group scalar codecs and for codebooks without per-token scaling.
struct CodecCase {
  std::string spec;
  double max_key_error;    // relative Frobenius error of a decoded page, keys (stored domain)
  double max_value_error;  // and values
};

void PrintTo(const CodecCase& c, std::ostream* os) { *os << c.spec; }

class CodecRoundTrip : public ::testing::TestWithParam<std::tuple<CodecCase, int>> {};

TEST_P(CodecRoundTrip, DecodesWithinBoundAndSubRangesAgree) {
  const auto& [c, head_dim] = GetParam();
  const CodecSpec spec = CodecSpec::parse(c.spec);
  const int page = 100;  // does not divide the calibration or test sizes
  const RopeTable rope = RopeTable::plain(head_dim, 10000.0);
  Calibration cal;
  CodecContext ctx{head_dim, page, 0, 0, &cal};
  test::calibrate(spec, ctx, rope, test::structured_rows(1200, head_dim, 7), cal);
  for (Role role : {Role::Key, Role::Value}) {
    auto codec = make_codec(spec, role, ctx);
    for (int first : {0, 4321}) {
      // Rows in the codec's stored domain: post-RoPE codecs receive rotated keys.
      std::vector<float> rows = test::structured_rows(page, head_dim, 99);
      if (role == Role::Key && !codec->stores_pre_rope_keys()) apply_rope_rows(rows.data(), page, first, rope);
      std::vector<uint8_t> bytes(codec->encoded_bytes(page, first) + 1, 0xA5);
      codec->encode(rows.data(), page, first, bytes.data());
      EXPECT_EQ(bytes.back(), 0xA5) << "encode wrote past encoded_bytes";
      const PageView view{bytes.data(), page, first};
      const std::vector<float> decoded = codec->decode_page(view);
      const double err = test::relative_error(decoded.data(), rows.data(), rows.size());
      EXPECT_LT(err, role == Role::Key ? c.max_key_error : c.max_value_error) << c.spec << " " << role_name(role);
      // Any sub-range decodes to the same rows as the whole page.
      std::vector<float> part(static_cast<size_t>(37) * head_dim, NAN);
      codec->decode_rows(view, 13, 50, part.data());
      for (size_t i = 0; i < part.size(); ++i) ASSERT_EQ(part[i], decoded[13 * head_dim + i]) << c.spec;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllCodecs, CodecRoundTrip,
    ::testing::Combine(::testing::Values(CodecCase{"bf16", 4e-3, 4e-3}, CodecCase{"fp16", 1e-3, 1e-3},
                                         CodecCase{"int:bits=8,group=32", 0.01, 0.01},
                                         CodecCase{"int:bits=4,group=128", 0.25, 0.25},
                                         CodecCase{"int:bits=2,group=64", 1.05, 1.1},
                                         CodecCase{"kvquant:bits=4,outliers=0.01,sink=1", 0.08, 0.12},
                                         CodecCase{"kvquant:bits=3,outliers=0.01,sink=4,qnorm=1", 0.18, 0.25},
                                         CodecCase{"kvquant:bits=2,outliers=0.02,nuq=0", 0.6, 0.6},
                                         CodecCase{"cq:channels=2,bits=8", 0.45, 0.45},
                                         CodecCase{"cq:channels=4,bits=8", 0.6, 0.6},
                                         CodecCase{"rvq:depth=4,codes=64,group=8", 0.35, 0.35}),
                       ::testing::Values(64, 96, 128, 256)));

// A page of identical rows: every range is empty; nothing may become NaN, and scalar codecs keep
// the value (a learned codebook only represents what calibration showed it, so RVQ must stay finite).
TEST(Codec, ConstantRowsStayFinite) {
  const int d = 64, page = 40;
  std::vector<float> rows(static_cast<size_t>(page) * d, 3.25f);
  Calibration cal;
  CodecContext ctx{d, page, 0, 0, &cal};
  const RopeTable rope = RopeTable::plain(d, 10000.0);
  for (const char* s : {"int:bits=2", "kvquant:bits=3,outliers=0.05,nuq=0", "rvq:depth=2,codes=16,group=8"}) {
    const CodecSpec spec = CodecSpec::parse(s);
    test::calibrate(spec, ctx, rope, test::structured_rows(500, d, 3), cal);
    for (Role role : {Role::Key, Role::Value}) {
      auto codec = make_codec(spec, role, ctx);
      std::vector<uint8_t> bytes(codec->encoded_bytes(page, 10));
      codec->encode(rows.data(), page, 10, bytes.data());
      for (float x : codec->decode_page({bytes.data(), page, 10})) {
        ASSERT_TRUE(std::isfinite(x)) << s;
        if (spec.name() != "rvq") {
          ASSERT_NEAR(x, 3.25f, 0.01f) << s;
        }
      }
    }
  }
}

TEST(Codec, ErrorFallsWithBits) {
  const int d = 128, page = 128;
  const RopeTable rope = RopeTable::plain(d, 10000.0);
  const std::vector<float> train = test::structured_rows(4096, d, 1), rows = test::structured_rows(page, d, 2);
  for (const char* family : {"int:group=128,bits=", "kvquant:outliers=0.01,bits="}) {
    double previous = 1e9;
    for (int bits : {1, 2, 3, 4}) {
      const CodecSpec spec = CodecSpec::parse(family + std::to_string(bits));
      Calibration cal;
      CodecContext ctx{d, page, 0, 0, &cal};
      test::calibrate(spec, ctx, rope, train, cal);
      auto codec = make_codec(spec, Role::Key, ctx);
      std::vector<uint8_t> bytes(codec->encoded_bytes(page, 500));
      codec->encode(rows.data(), page, 500, bytes.data());
      const std::vector<float> back = codec->decode_page({bytes.data(), page, 500});
      const double err = test::relative_error(back.data(), rows.data(), rows.size());
      EXPECT_LT(err, previous) << family << bits;
      previous = err;
    }
  }
}

TEST(Codec, NonUniformLevelsBeatUniformOnGaussianData) {
  const int d = 128, page = 128;
  const RopeTable rope = RopeTable::plain(d, 10000.0);
  const std::vector<float> train = test::gaussian(4096 * d, 5), rows = test::gaussian(page * d, 6);
  auto error_of = [&](const std::string& s) {
    const CodecSpec spec = CodecSpec::parse(s);
    Calibration cal;
    CodecContext ctx{d, page, 0, 0, &cal};
    test::calibrate(spec, ctx, rope, train, cal);
    auto codec = make_codec(spec, Role::Value, ctx);
    std::vector<uint8_t> bytes(codec->encoded_bytes(page, 0));
    codec->encode(rows.data(), page, 0, bytes.data());
    const std::vector<float> back = codec->decode_page({bytes.data(), page, 0});
    return test::relative_error(back.data(), rows.data(), rows.size());
  };
  EXPECT_LT(error_of("kvquant:bits=3"), 0.85 * error_of("kvquant:bits=3,nuq=0"));
}

TEST(Codec, OutliersAreKeptExactly) {
  const int d = 64, page = 64;
  std::vector<float> rows = test::gaussian(static_cast<size_t>(page) * d, 11);
  rows[5 * d + 7] = 250.0f;  // one huge value per token vector 5 and channel vector 7
  const CodecSpec spec = CodecSpec::parse("kvquant:bits=2,outliers=0.02,nuq=0");
  CodecContext ctx{d, page, 0, 0, nullptr};
  for (Role role : {Role::Key, Role::Value}) {
    auto codec = make_codec(spec, role, ctx);
    std::vector<uint8_t> bytes(codec->encoded_bytes(page, 0));
    codec->encode(rows.data(), page, 0, bytes.data());
    const std::vector<float> back = codec->decode_page({bytes.data(), page, 0});
    EXPECT_EQ(back[5 * d + 7], 250.0f);
    // With the outlier removed from the range, the other values of its vector keep a fine grid.
    EXPECT_NEAR(back[5 * d + 8], rows[5 * d + 8], 1.5);
  }
}

TEST(Codec, SinkTokensAreStoredInFp16) {
  const int d = 64, page = 32;
  const std::vector<float> rows = test::structured_rows(page, d, 4);
  const CodecSpec spec = CodecSpec::parse("kvquant:bits=2,sink=3,nuq=0");
  auto codec = make_codec(spec, Role::Key, {d, page, 0, 0, nullptr});
  std::vector<uint8_t> bytes(codec->encoded_bytes(page, 0));
  codec->encode(rows.data(), page, 0, bytes.data());
  const std::vector<float> back = codec->decode_page({bytes.data(), page, 0});
  for (int i = 0; i < 3 * d; ++i) EXPECT_EQ(back[i], fp16_to_float(float_to_fp16(rows[i])));
  // A page that starts past the sink holds no fp16 rows.
  EXPECT_LT(codec->encoded_bytes(page, page), codec->encoded_bytes(page, 0));
}

// Sizes computed by hand from the documented page layouts.
TEST(Codec, EncodedBytesMatchHandComputedLayouts) {
  const int d = 128, page = 128;
  Calibration cal;
  CodecContext ctx{d, page, 0, 0, &cal};
  const RopeTable rope = RopeTable::plain(d, 10000.0);
  auto bytes_of = [&](const std::string& s, Role role, int tokens, int first) {
    const CodecSpec spec = CodecSpec::parse(s);
    if (codec_needs_calibration(spec)) test::calibrate(spec, ctx, rope, test::structured_rows(600, d, 1), cal);
    return make_codec(spec, role, ctx)->encoded_bytes(tokens, first);
  };
  EXPECT_EQ(bytes_of("bf16", Role::Key, 128, 0), 128u * 128 * 2);
  // int 2-bit, group 128: one fp16 (lo, step) pair per channel (keys) or per token (values) + codes.
  EXPECT_EQ(bytes_of("int:bits=2,group=128", Role::Key, 128, 0), 128u * 4 + 128 * 128 * 2 / 8);
  EXPECT_EQ(bytes_of("int:bits=2,group=32", Role::Key, 128, 0), 4u * 128 * 4 + 128 * 128 * 2 / 8);
  EXPECT_EQ(bytes_of("int:bits=2,group=32", Role::Value, 128, 0), 128u * 4 * 4 + 128 * 128 * 2 / 8);
  EXPECT_EQ(bytes_of("int:bits=3,group=128", Role::Value, 5, 0), 5u * 4 + (5 * 128 * 3 + 7) / 8);
  // kvquant 3-bit, 1% outliers, sink 1, first page: 1 fp16 sink row, ranges, 127 rows of codes,
  // round(0.01 * 127) = 1 outlier per channel (keys) / round(0.01 * 128) = 1 per token (values).
  EXPECT_EQ(bytes_of("kvquant:bits=3,outliers=0.01,sink=1", Role::Key, 128, 0), 256u + 128 * 4 + 127 * 128 * 3 / 8 + 128 * 4);
  EXPECT_EQ(bytes_of("kvquant:bits=3,outliers=0.01,sink=1", Role::Value, 128, 0), 256u + 127 * 4 + 127 * 128 * 3 / 8 + 127 * 4);
  EXPECT_EQ(bytes_of("kvquant:bits=3,outliers=0.01,sink=1", Role::Value, 128, 128), 128u * 4 + 128 * 128 * 3 / 8 + 128 * 4);
  // cq: 16 groups of 8 channels, one 8-bit code each per token: 1 bit per channel.
  EXPECT_EQ(bytes_of("cq:channels=8,bits=8", Role::Key, 128, 0), 128u * 16);
  // rvq: fp16 std per token + 16 groups x 4 levels x 6-bit codes per token.
  EXPECT_EQ(bytes_of("rvq:depth=4,codes=64,group=8", Role::Value, 128, 0), 128u * 2 + 128 * 16 * 4 * 6 / 8);
}

TEST(Codec, SpecsAreValidated) {
  CodecContext ctx{128, 128, 0, 0, nullptr};
  EXPECT_THROW(make_codec(CodecSpec::parse("int:bit=2"), Role::Key, ctx), Error);          // typo
  EXPECT_THROW(make_codec(CodecSpec::parse("int:bits=9"), Role::Key, ctx), Error);         // out of range
  EXPECT_THROW(make_codec(CodecSpec::parse("int:bits=two"), Role::Key, ctx), Error);       // not a number
  EXPECT_THROW(make_codec(CodecSpec::parse("zip:bits=2"), Role::Key, ctx), Error);         // unknown codec
  EXPECT_THROW(make_codec(CodecSpec::parse("cq:channels=3,bits=4"), Role::Key, ctx), Error);  // 3 does not divide 128
  EXPECT_THROW(make_codec(CodecSpec::parse("cq:channels=8,bits=8"), Role::Key, ctx), Error);  // no calibration
  try {
    make_codec(CodecSpec::parse("kvquant:bits=3"), Role::Key, ctx);
    FAIL() << "kvquant with NUQ must ask for a calibration file";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ringkv calibrate"), std::string::npos) << e.what();
  }
  const KVSpec kv = KVSpec::parse("int:bits=2 | int:bits=4");
  EXPECT_EQ(kv.key.text(), "int:bits=2");
  EXPECT_EQ(kv.value.text(), "int:bits=4");
  EXPECT_EQ(CodecSpec::parse("int:group=64,bits=2").text(), CodecSpec::parse("int:bits=2,group=64").text());
}

TEST(BitPacking, RoundTripsEveryWidth) {
  for (int bits = 1; bits <= 16; ++bits) {
    std::vector<uint32_t> codes(1001);
    for (size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<uint32_t>((i * 2654435761u) >> 7) & ((1u << bits) - 1);
    std::vector<uint8_t> packed(packed_bytes(codes.size(), bits));
    BitWriter w(packed.data());
    for (uint32_t c : codes) w.put(c, bits);
    w.flush();
    for (size_t i = 0; i < codes.size(); ++i) ASSERT_EQ(read_code(packed.data(), i, bits), codes[i]) << bits;
    // Runs of codes, aligned and not, through the bulk unpacker.
    for (size_t first : {size_t{0}, size_t{8}, size_t{5}, size_t{16}})
      for (int count : {1, 7, 8, 21, 64, 128}) {
        std::vector<uint16_t> out(count);
        unpack_codes(packed.data(), first, count, bits, out.data());
        for (int i = 0; i < count; ++i) ASSERT_EQ(out[i], codes[first + i]) << bits << " " << first << " " << count;
      }
  }
}

TEST(Half, ConversionsRoundToNearestEven) {
  for (float x : {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 6.1e-5f, 3.0e-7f, 1e-3f, 123.456f}) {
    EXPECT_NEAR(fp16_to_float(float_to_fp16(x)), x, std::fabs(x) * 1e-3 + 6e-8) << x;
    EXPECT_NEAR(bf16_to_float(float_to_bf16(x)), x, std::fabs(x) * 8e-3) << x;
  }
  EXPECT_EQ(float_to_fp16(1.0f + 1.0f / 2048), float_to_fp16(1.0f));  // tie rounds to even
  EXPECT_TRUE(std::isinf(fp16_to_float(float_to_fp16(1e6f))));
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(NAN))));
}

}  // namespace
}  // namespace ringkv
