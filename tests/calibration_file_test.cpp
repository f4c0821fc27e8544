// Calibration files and the binary I/O under them: exact round trips, and every kind of damage refused
// with a message that names the file and says what is wrong.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "kernels/error.hpp"
#include "kvstore/binary_io.hpp"
#include "kvstore/calibration.hpp"

namespace ringkv {
namespace {

constexpr char kCalibrationMagic[8] = {'R', 'K', 'V', 'C', 'A', 'L', 'I', 'B'};

// The message of the ringkv::Error that `f` throws, or "" (and a test failure) when it throws none.
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no ringkv::Error thrown";
  return "";
}

bool contains(const std::string& text, const std::string& words) { return text.find(words) != std::string::npos; }

class CalibrationFile : public ::testing::Test {
 protected:
  // One file per test: ctest runs tests in parallel processes.
  std::string path = ::testing::TempDir() + "/ringkv_calibration_" +
                     ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".bin";
  void TearDown() override { std::remove(path.c_str()); }

  // Writes `bytes` and returns load()'s error. These tests write hundreds of files: a plain write to a
  // fresh file, since fsync, or truncating a file in place, makes the file system flush each one.
  std::string load_error(const std::vector<uint8_t>& bytes) {
    std::remove(path.c_str());
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    return error_of([&] { Calibration::load(path); });
  }
};

// Tables with awkward values: NaN payloads, -0, denormals, infinities, an empty and a rank-0 table.
Calibration awkward_calibration() {
  Calibration cal;
  cal.description = "llama-3 8B on wikitext, 512 rows \xce\xbb";
  using limits = std::numeric_limits<float>;
  std::vector<float> odd{-0.0f, limits::denorm_min(), limits::infinity(), 1e38f};
  uint32_t nan_bits = 0x7fc12345;
  float nan;
  std::memcpy(&nan, &nan_bits, 4);
  odd.push_back(nan);
  odd.push_back(-1.0f);
  cal.put(table_name(CodecSpec::parse("cq:channels=2,bits=1"), 3, 1, Role::Value, "centroids"), Tensor{{3, 2}, odd});
  cal.put("empty", Tensor{{0, 4}, {}});
  cal.put("scalar", Tensor{{}, {0.5f}});
  std::vector<float> levels(256);
  for (size_t i = 0; i < levels.size(); ++i) levels[i] = std::sin(static_cast<float>(i));
  cal.put("levels", Tensor{{2, 128}, levels});
  return cal;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

TEST_F(CalibrationFile, RoundTripIsBitExact) {
  const Calibration cal = awkward_calibration();
  cal.save(path);
  const std::vector<uint8_t> first = read_file(path);
  const Calibration back = Calibration::load(path);
  EXPECT_EQ(back.description, cal.description);
  ASSERT_EQ(back.tables().size(), cal.tables().size());
  for (const auto& [name, t] : cal.tables()) {
    ASSERT_TRUE(back.has(name)) << name;
    EXPECT_EQ(back.get(name, t.shape).shape, t.shape) << name;
    EXPECT_TRUE(same_bits(back.get(name, t.shape).data, t.data)) << name;
  }
  EXPECT_EQ(back.fingerprint(), cal.fingerprint());
  back.save(path);
  EXPECT_EQ(read_file(path), first);  // saving is deterministic
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST_F(CalibrationFile, RefusesEveryTruncation) {
  awkward_calibration().save(path);
  const std::vector<uint8_t> good = read_file(path);
  for (size_t cut = 0; cut < good.size(); ++cut) {
    const std::string e = load_error({good.begin(), good.begin() + cut});
    EXPECT_TRUE(contains(e, path)) << "cut at " << cut << ": " << e;
    if (cut >= 8) {
      EXPECT_TRUE(contains(e, "truncated")) << "cut at " << cut << ": " << e;
    }
  }
}

TEST_F(CalibrationFile, RefusesEveryFlippedByte) {
  awkward_calibration().save(path);
  const std::vector<uint8_t> good = read_file(path);
  for (size_t at = 0; at < good.size(); ++at) {
    std::vector<uint8_t> bad = good;
    bad[at] ^= 0x10;
    const std::string e = load_error(bad);
    const char* expected =
        at < 8 ? "not a RingKV calibration file" : at < 12 ? "this build reads version 1" : "checksum mismatch";
    EXPECT_TRUE(contains(e, expected) && contains(e, path)) << "byte " << at << ": " << e;
  }
}

TEST_F(CalibrationFile, NamesWrongMagicAndVersion) {
  EXPECT_TRUE(contains(load_error({'G', 'G', 'U', 'F', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}),
                       "is not a RingKV calibration file"));
  BinaryWriter w;
  begin_file(w, kCalibrationMagic, 2);
  w.put_string("from the future");
  w.put<uint32_t>(0);
  finish_file(w);
  const std::string e = load_error(w.bytes());
  EXPECT_TRUE(contains(e, "version 2") && contains(e, "this build reads version 1")) << e;
}

// A file with valid framing around the given table records: the checks after the checksum must hold.
std::vector<uint8_t> framed(uint32_t tables, const std::vector<uint8_t>& records) {
  BinaryWriter w;
  begin_file(w, kCalibrationMagic, Calibration::kFormatVersion);
  w.put_string("crafted");
  w.put<uint32_t>(tables);
  w.append(records.data(), records.size());
  finish_file(w);
  return w.bytes();
}

std::vector<uint8_t> record(const std::string& name, const std::vector<int64_t>& shape, size_t values) {
  BinaryWriter w;
  w.put_string(name);
  w.put<uint32_t>(static_cast<uint32_t>(shape.size()));
  for (int64_t d : shape) w.put(d);
  const std::vector<float> data(values, 1.0f);
  w.append(data.data(), data.size() * sizeof(float));
  return w.bytes();
}

TEST_F(CalibrationFile, RefusesImplausibleContentsUnderAValidChecksum) {
  EXPECT_NO_THROW({
    write_file_atomically(path, framed(1, record("t", {2, 3}, 6)));
    EXPECT_EQ(Calibration::load(path).get("t", {2, 3}).data.size(), 6u);
  });
  EXPECT_TRUE(contains(load_error(framed(1, record("t", {-2, 3}, 6))), "implausible dimension -2"));
  EXPECT_TRUE(contains(load_error(framed(1, record("t", {2, 4}, 6))), "implausible dimension 4"));
  // Dimensions whose product overflows 64 bits must not wrap around to a small count.
  const int64_t big = int64_t{1} << 33;
  EXPECT_TRUE(contains(load_error(framed(1, record("t", {big, big}, 0))), "implausible dimension"));
  EXPECT_TRUE(contains(load_error(framed(1, record("t", std::vector<int64_t>(9, 1), 1))), "implausible rank 9"));
  EXPECT_TRUE(contains(load_error(framed(2, record("t", {2}, 2))), "truncated"));
  std::vector<uint8_t> twice = record("t", {1}, 1), again = record("t", {1}, 1);
  twice.insert(twice.end(), again.begin(), again.end());
  EXPECT_TRUE(contains(load_error(framed(2, twice)), "holds table t twice"));
  const std::string e = load_error(framed(1, record("t", {2}, 3)));
  EXPECT_TRUE(contains(e, "4 unexpected trailing bytes") && contains(e, path)) << e;
}

TEST_F(CalibrationFile, MissingOrMisshapenTablesSayWhatToDo) {
  const Calibration cal = awkward_calibration();
  const std::string name = table_name(CodecSpec::parse("rvq:depth=2,codes=16,group=8"), 0, 0, Role::Key, "codebooks");
  const std::string missing = error_of([&] { cal.get(name, {2, 16, 8}); });
  EXPECT_TRUE(contains(missing, "calibration has no table '" + name + "'")) << missing;
  EXPECT_TRUE(contains(missing, "run `ringkv calibrate` with this codec spec")) << missing;
  const std::string misshapen = error_of([&] { cal.get("levels", {128, 2}); });
  EXPECT_TRUE(contains(misshapen, "'levels'") && contains(misshapen, "[2, 128]") && contains(misshapen, "[128, 2]"))
      << misshapen;
}

TEST(Calibration, PutChecksTheShape) {
  Calibration cal;
  EXPECT_TRUE(contains(error_of([&] { cal.put("t", Tensor{{2, 3}, std::vector<float>(5)}); }), "holds 5 values"));
  EXPECT_THROW(cal.put("t", Tensor{{-1}, {}}), Error);
  EXPECT_FALSE(cal.has("t"));
  cal.put("t", Tensor{{2, 3}, std::vector<float>(6)});
  EXPECT_TRUE(cal.has("t"));
}

TEST(Calibration, FingerprintFollowsNamesShapesAndData) {
  const Calibration cal = awkward_calibration();
  const uint64_t base = cal.fingerprint();
  Calibration other = cal;
  other.description = "another description";
  EXPECT_EQ(other.fingerprint(), base);  // for people only
  other.put("levels", Tensor{{2, 128}, std::vector<float>(256, 0.0f)});
  EXPECT_NE(other.fingerprint(), base);
  other = cal;
  other.put("levels", Tensor{{256}, cal.get("levels", {2, 128}).data});
  EXPECT_NE(other.fingerprint(), base);
  other = cal;
  other.put("levels2", Tensor{{1}, {0.0f}});
  EXPECT_NE(other.fingerprint(), base);
}

TEST(Calibration, TableNamesUseTheCanonicalSpec) {
  EXPECT_EQ(table_name(CodecSpec::parse("kvquant:outliers=0.01,bits=3"), 12, 7, Role::Value, "levels"),
            "kvquant:bits=3,outliers=0.01/L12/H7/V/levels");
  EXPECT_EQ(table_name(CodecSpec::parse("cq:channels=8,bits=8"), 0, 0, Role::Key, "centroids"),
            "cq:bits=8,channels=8/L0/H0/K/centroids");
}

TEST(BinaryIO, Checksum64IsFnv1a) {
  EXPECT_EQ(checksum64("", 0), 0xcbf29ce484222325ull);
  EXPECT_EQ(checksum64("a", 1), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(checksum64("foobar", 6), 0x85944171f73967e8ull);
  EXPECT_EQ(checksum64("bar", 3, checksum64("foo", 3)), checksum64("foobar", 6));  // the seed chains
}

TEST(BinaryIO, WritesAtomicallyAndReadsBack) {
  const std::string path = ::testing::TempDir() + "/ringkv_binary_io_roundtrip.bin";
  write_file_atomically(path, {1, 2, 3});
  std::vector<uint8_t> big(300000);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 7);
  write_file_atomically(path, big);  // replaces
  EXPECT_EQ(read_file(path), big);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  write_file_atomically(path, {});
  EXPECT_TRUE(read_file(path).empty());
  std::remove(path.c_str());
}

TEST(BinaryIO, ErrorsNameThePathAndTheReason) {
  const std::string missing = ::testing::TempDir() + "/ringkv_no_such_dir/file.bin";
  const std::string read = error_of([&] { read_file(missing); });
  EXPECT_TRUE(contains(read, missing) && contains(read, "No such file or directory")) << read;
  const std::string write = error_of([&] { write_file_atomically(missing, {1}); });
  EXPECT_TRUE(contains(write, missing) && contains(write, "No such file or directory")) << write;
  const std::string dir = error_of([&] { read_file(::testing::TempDir()); });
  EXPECT_TRUE(contains(dir, "Is a directory")) << dir;
  // Renaming over a directory fails after the temporary file was written: it must not be left behind.
  const std::string target = ::testing::TempDir() + "/ringkv_binary_io_dir_target";
  std::filesystem::create_directories(target);
  EXPECT_TRUE(contains(error_of([&] { write_file_atomically(target, {1}); }), target));
  EXPECT_FALSE(std::filesystem::exists(target + ".tmp"));
  std::remove(target.c_str());
}

TEST(BinaryIO, ReaderRefusesToReadPastItsEnd) {
  const std::vector<uint8_t> bytes{5, 0, 0, 0, 'a', 'b'};
  BinaryReader r(bytes.data(), bytes.size(), "test.bin");
  const std::string e = error_of([&] { r.get_string(); });
  EXPECT_TRUE(contains(e, "test.bin is truncated") && contains(e, "needs 5 bytes at offset 4")) << e;
  BinaryReader huge(bytes.data(), bytes.size(), "test.bin");
  EXPECT_TRUE(contains(error_of([&] { huge.get_string(4); }), "implausible"));
}

}  // namespace
}  // namespace ringkv
