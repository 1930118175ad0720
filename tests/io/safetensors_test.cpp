// The safetensors reader on valid files and on every malformed-file class.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "io/io.hpp"
#include "support/temp_dir.hpp"

namespace tokmap::io {
namespace {

using ::testing::HasSubstr;

using tokmap::test_support::TempDir;

// A file with an explicit header length, header text and data bytes.
fs::path raw_file(const TempDir& dir, std::uint64_t header_length, std::string_view header,
                  std::size_t data_bytes) {
  const fs::path path = dir / "x.safetensors";
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(&header_length), 8);
  out << header << std::string(data_bytes, '\0');
  return path;
}

fs::path file_with_header(const TempDir& dir, std::string_view header, std::size_t data_bytes) {
  return raw_file(dir, header.size(), header, data_bytes);
}

std::string open_error(const fs::path& path) {
  try {
    SafetensorsFile file(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Safetensors, WriterAndReaderRoundTrip) {
  TempDir dir;
  SafetensorsWriter writer(dir / "t.safetensors");
  writer.set_metadata("layers", "[0, 6]");
  writer.declare("hidden", DType::F32, {2, 3});
  writer.declare("ids", DType::I64, {3});
  writer.begin();
  const float second_row[] = {4, 5, 6};
  const float first_row[] = {1, 2, 3};
  writer.write("hidden", 3, std::span<const float>(second_row));  // out of order on purpose
  writer.write("hidden", 0, std::span<const float>(first_row));
  const std::int64_t ids[] = {7, 8, 9};
  writer.write("ids", 0, std::span<const std::int64_t>(ids));
  EXPECT_FALSE(fs::exists(dir / "t.safetensors"));  // nothing visible before commit
  writer.commit();

  const SafetensorsFile file(dir / "t.safetensors");
  EXPECT_EQ(file.metadata().at("layers"), "[0, 6]");
  EXPECT_EQ(file.to_f32(file.get("hidden")), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(file.to_i64(file.get("ids")), (std::vector<std::int64_t>{7, 8, 9}));
  EXPECT_EQ(file.get("hidden").shape, (std::vector<std::int64_t>{2, 3}));
  // Data section is 8-byte aligned like the reference writer's.
  const MappedFile mapped(dir / "t.safetensors");
  std::uint64_t header_length;
  std::memcpy(&header_length, mapped.bytes().data(), 8);
  EXPECT_EQ(header_length % 8, 0u);
}

TEST(Safetensors, WriterRefusesValuesOfTheWrongType) {
  TempDir dir;
  SafetensorsWriter writer(dir / "t.safetensors");
  writer.declare("ids", DType::I64, {2});
  writer.begin();
  const float values[] = {1, 2};
  EXPECT_THROW(writer.write("ids", 0, std::span<const float>(values)), Error);
  const std::int64_t ids[] = {1, 2, 3};
  EXPECT_THROW(writer.write("ids", 0, std::span<const std::int64_t>(ids)), Error);  // too many
}

TEST(Safetensors, ConvertsHalfPrecision) {
  TempDir dir;
  SafetensorsWriter writer(dir / "h.safetensors");
  writer.declare("f16", DType::F16, {4});
  writer.declare("bf16", DType::BF16, {2});
  writer.begin();
  const std::uint16_t halves[] = {0x3c00, 0xc000, 0x0001, 0x7bff};  // 1, -2, 2^-24, 65504
  writer.write("f16", 0, std::as_bytes(std::span<const std::uint16_t>(halves)));
  const std::uint16_t brains[] = {0x3f80, 0x4049};  // 1, 3.140625
  writer.write("bf16", 0, std::as_bytes(std::span<const std::uint16_t>(brains)));
  writer.commit();
  const SafetensorsFile file(dir / "h.safetensors");
  EXPECT_EQ(file.to_f32(file.get("f16")),
            (std::vector<float>{1.0f, -2.0f, 5.9604645e-8f, 65504.0f}));
  EXPECT_EQ(file.to_f32(file.get("bf16")), (std::vector<float>{1.0f, 3.140625f}));
}

TEST(Safetensors, RejectsFilesShorterThanTheLengthPrefix) {
  TempDir dir;
  std::ofstream(dir / "short.safetensors") << "abc";
  EXPECT_THAT(open_error(dir / "short.safetensors"),
              HasSubstr("shorter than the 8-byte header length"));
  std::ofstream(dir / "empty.safetensors");
  EXPECT_THAT(open_error(dir / "empty.safetensors"), HasSubstr("0 bytes"));
}

TEST(Safetensors, RejectsHeaderLengthBeyondTheFile) {
  TempDir dir;
  EXPECT_THAT(open_error(raw_file(dir, 1000, "{}", 0)),
              HasSubstr("header length 1000 at offset 0 goes beyond the end of the file"));
  EXPECT_THAT(open_error(raw_file(dir, ~0ull, "{}", 0)),
              HasSubstr("goes beyond the end of the file"));
}

TEST(Safetensors, RejectsHeaderThatIsNotJson) {
  TempDir dir;
  EXPECT_THAT(open_error(file_with_header(dir, "{\"a\": ", 0)),
              HasSubstr("header (offset 8, 6 bytes): not valid JSON"));
  EXPECT_THAT(open_error(file_with_header(dir, "[1, 2]", 0)),
              HasSubstr("header is not a JSON object"));
  EXPECT_THAT(open_error(file_with_header(dir, "{\"a\": 1}", 0)),
              HasSubstr("tensor 'a': entry is not a JSON object"));
}

TEST(Safetensors, RejectsOffsetsOutOfBounds) {
  TempDir dir;
  const auto path =
      file_with_header(dir, R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", 8);
  EXPECT_THAT(open_error(path),
              HasSubstr("tensor 'w': data_offsets [0, 16] beyond the data section (8 bytes"));
  const auto reversed =
      file_with_header(dir, R"({"w": {"dtype": "F32", "shape": [0], "data_offsets": [8, 0]}})", 8);
  EXPECT_THAT(open_error(reversed), HasSubstr("end before they begin"));
  const auto negative =
      file_with_header(dir, R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}})", 8);
  EXPECT_THAT(open_error(negative), HasSubstr("non-negative"));
}

TEST(Safetensors, RejectsOverlappingTensors) {
  TempDir dir;
  const auto path = file_with_header(
      dir,
      R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
      12);
  EXPECT_THAT(open_error(path), HasSubstr("tensors 'a' and 'b' overlap"));
}

TEST(Safetensors, RejectsUnknownDtypeAndShapeLies) {
  TempDir dir;
  EXPECT_THAT(open_error(file_with_header(
                  dir, R"({"w": {"dtype": "F8", "shape": [1], "data_offsets": [0, 1]}})", 1)),
              HasSubstr("unknown dtype 'F8'"));
  EXPECT_THAT(open_error(file_with_header(
                  dir, R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", 8)),
              HasSubstr("F32 [3] needs 12 bytes but data_offsets span 8"));
  EXPECT_THAT(
      open_error(file_with_header(
          dir,
          R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]}})",
          8)),
      HasSubstr("shape overflows 64 bits"));
  EXPECT_THAT(open_error(file_with_header(
                  dir, R"({"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})", 4)),
              HasSubstr("not a non-negative integer"));
  EXPECT_THAT(
      open_error(file_with_header(dir, R"({"w": {"dtype": "F32", "data_offsets": [0, 4]}})", 4)),
      HasSubstr("missing or non-array 'shape'"));
}

TEST(Safetensors, RejectsDuplicateTensorNames) {
  TempDir dir;
  const auto path = file_with_header(
      dir,
      R"({"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, "a": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}})",
      2);
  EXPECT_THAT(open_error(path), HasSubstr("key 'a' appears twice"));
}

TEST(Safetensors, TruncatedAtEveryBoundaryFailsCleanly) {
  TempDir dir;
  SafetensorsWriter writer(dir / "full.safetensors");
  writer.declare("a", DType::F32, {3});
  writer.declare("b", DType::F16, {5});
  writer.begin();
  writer.commit();
  const std::string full = read_text_file(dir / "full.safetensors");
  SafetensorsFile ok(dir / "full.safetensors");
  for (std::size_t length = 0; length < full.size(); ++length) {
    std::ofstream(dir / "cut.safetensors", std::ios::binary | std::ios::trunc)
        << full.substr(0, length);
    EXPECT_NE(open_error(dir / "cut.safetensors"), "(no error)") << "truncated to " << length;
  }
}

TEST(Safetensors, MissingTensorAndFileAreNamed) {
  TempDir dir;
  EXPECT_THAT(open_error(dir / "none.safetensors"), HasSubstr("none.safetensors: cannot open"));
  const auto path = file_with_header(dir, "{}", 0);
  const SafetensorsFile file(path);
  try {
    file.get("wte.weight");
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("x.safetensors: tensor 'wte.weight' is missing"));
  }
}

}  // namespace
}  // namespace tokmap::io
