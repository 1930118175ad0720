// .npy / TSV / CSV readers and writers, and atomic writes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>

#include "io/io.hpp"
#include "support/error_of.hpp"
#include "support/temp_dir.hpp"

namespace tokmap::io {
namespace {

using ::testing::HasSubstr;

using tokmap::test_support::TempDir;

using tokmap::test_support::error_of;

// Writes a .npy with a hand-made header (version 1).
fs::path npy(const TempDir& dir, std::string header, std::string_view data) {
  const fs::path path = dir / "m.npy";
  std::ofstream out(path, std::ios::binary);
  out << "\x93NUMPY" << '\x01' << '\x00';
  header.push_back('\n');
  out << static_cast<char>(header.size() & 0xff) << static_cast<char>(header.size() >> 8) << header
      << data;
  return path;
}

TEST(Npy, RoundTripsFloat32) {
  TempDir dir;
  Matrix m{2, 3, {1, 2, 3, 4, 5, 6.5f}};
  write_npy(dir / "a.npy", m);
  const Matrix back = read_npy(dir / "a.npy");
  EXPECT_EQ(back.rows, 2u);
  EXPECT_EQ(back.cols, 3u);
  EXPECT_EQ(back.data, m.data);
}

TEST(Npy, ReadsFloat64) {
  TempDir dir;
  const double values[] = {1.5, -2.25};
  const auto path = npy(dir, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 1), }",
                        std::string_view(reinterpret_cast<const char*>(values), sizeof values));
  EXPECT_EQ(read_npy(path).data, (std::vector<float>{1.5f, -2.25f}));
}

TEST(Npy, RejectsBadFiles) {
  TempDir dir;
  std::ofstream(dir / "not.npy") << "hello world";
  EXPECT_THAT(error_of([&] { read_npy(dir / "not.npy"); }), HasSubstr("not a .npy file"));
  EXPECT_THAT(
      error_of([&] {
        read_npy(npy(dir, "{'descr': '<i4', 'fortran_order': False, 'shape': (1, 1), }", "abcd"));
      }),
      HasSubstr("unsupported dtype '<i4'"));
  EXPECT_THAT(
      error_of([&] {
        read_npy(npy(dir, "{'descr': '>f4', 'fortran_order': False, 'shape': (1, 1), }", "abcd"));
      }),
      HasSubstr("unsupported dtype"));
  EXPECT_THAT(
      error_of([&] {
        read_npy(npy(dir, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", "abcd"));
      }),
      HasSubstr("expected a 2-D array"));
  EXPECT_THAT(
      error_of([&] {
        read_npy(npy(dir, "{'descr': '<f4', 'fortran_order': True, 'shape': (1, 1), }", "abcd"));
      }),
      HasSubstr("Fortran"));
  EXPECT_THAT(
      error_of([&] {
        read_npy(npy(dir, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", "abcd"));
      }),
      HasSubstr("truncated"));
  EXPECT_THAT(
      error_of([&] {
        read_npy(npy(
            dir, "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }",
            ""));
      }),
      HasSubstr("overflows"));
  EXPECT_THAT(error_of([&] {
                read_npy(npy(dir, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3", ""));
              }),
              HasSubstr("malformed"));
  // Found by fuzz_npy: a huge row count with zero columns used to make check_finite spin.
  EXPECT_THAT(
      error_of([&] {
        read_npy(npy(
            dir, "{'descr': '<f8', 'fortran_order': False, 'shape': (099999999999LLLL0), }", ""));
      }),
      HasSubstr("no columns"));
  EXPECT_THAT(
      error_of([&] {
        read_npy(
            npy(dir, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 0), }", ""));
      }),
      HasSubstr("99999999999 rows but no columns"));
}

TEST(Delimited, ReadsTsvAndCsv) {
  TempDir dir;
  std::ofstream(dir / "a.tsv") << "1\t2.5\n-3\t4e2\n\n";
  const Matrix tsv = read_delimited(dir / "a.tsv", '\t');
  EXPECT_EQ(tsv.rows, 2u);
  EXPECT_EQ(tsv.data, (std::vector<float>{1, 2.5f, -3, 400}));
  std::ofstream(dir / "a.csv") << "1, 2\r\n3,4\r\n";
  EXPECT_EQ(read_delimited(dir / "a.csv", ',').data, (std::vector<float>{1, 2, 3, 4}));
}

TEST(Delimited, RejectsRaggedAndNonNumericRows) {
  TempDir dir;
  std::ofstream(dir / "ragged.tsv") << "1\t2\n3\n";
  EXPECT_THAT(error_of([&] { read_delimited(dir / "ragged.tsv", '\t'); }),
              HasSubstr("line 2 has 1 columns, the first row has 2"));
  std::ofstream(dir / "words.tsv") << "1\t2\n3\tcat\n";
  EXPECT_THAT(error_of([&] { read_delimited(dir / "words.tsv", '\t'); }),
              HasSubstr("line 2, column 2: 'cat' is not a number"));
}

TEST(Delimited, WritesWhatItReads) {
  TempDir dir;
  Matrix m{2, 2, {0.1f, -2, 3e-8f, 1234567}};
  write_delimited(dir / "o.csv", m, ',');
  EXPECT_EQ(read_delimited(dir / "o.csv", ',').data, m.data);
}

TEST(CheckFinite, NamesTheFirstBadRow) {
  Matrix m{3, 2, {1, 2, 3, NAN, INFINITY, 0}};
  EXPECT_THAT(error_of([&] { check_finite(m, "x.npy"); }),
              HasSubstr("x.npy: row 2, column 2 is NaN"));
}

TEST(CheckFinite, FirstNonFiniteFindsEveryPositionAcrossBlocks) {
  std::vector<float> values(10000, 1.0f);
  values[17] = std::numeric_limits<float>::max();  // finite extremes are fine
  values[18] = std::numeric_limits<float>::denorm_min();
  values[19] = -0.0f;
  EXPECT_EQ(first_non_finite(values), values.size());
  EXPECT_EQ(first_non_finite({}), 0u);
  for (const std::size_t at :
       {std::size_t{0}, std::size_t{4095}, std::size_t{4096}, std::size_t{9999}}) {
    for (const float bad : {NAN, INFINITY, -INFINITY}) {
      auto copy = values;
      copy[at] = bad;
      copy[9999] = NAN;  // a later one is not the first
      EXPECT_EQ(first_non_finite(copy), at) << at << " " << bad;
    }
  }
  Matrix m{2, 2, {1, 2, 3, -INFINITY}};
  EXPECT_THAT(error_of([&] { check_finite(m, "e.safetensors", "layer 3"); }),
              HasSubstr("e.safetensors: layer 3, row 2, column 2 is infinite"));
}

TEST(AtomicFile, LeavesNothingBehindWithoutCommit) {
  TempDir dir;
  {
    AtomicFile file(dir / "out.txt");
    file.write("partial");
  }
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(AtomicFile, NeverHalfOverwritesAnExistingFile) {
  TempDir dir;
  write_file_atomically(dir / "out.txt", "old");
  {
    AtomicFile file(dir / "out.txt");
    file.write("new but unfinished");
  }
  EXPECT_EQ(read_text_file(dir / "out.txt"), "old");
  write_file_atomically(dir / "out.txt", "new");
  EXPECT_EQ(read_text_file(dir / "out.txt"), "new");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator{}), 1);
}

TEST(AtomicFile, RemovePendingTempFilesUnlinksLiveTemporaries) {
  TempDir dir;
  AtomicFile file(dir / "out.bin");
  file.write("x");
  EXPECT_FALSE(fs::is_empty(dir.path()));
  remove_pending_temp_files();  // what the SIGINT handler does
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(AtomicFile, PendingFoldersAreRemovedWholeOnInterrupt) {
  TempDir dir;
  const fs::path staging = dir / ".report.tmp";
  fs::create_directories(staging / "figures");
  write_file_atomically(staging / "index.html", "x");
  write_file_atomically(staging / "figures" / "a.png", "y");
  register_pending_folder(staging);
  remove_pending_temp_files();  // what the SIGINT handler does
  EXPECT_FALSE(fs::exists(staging));
  unregister_pending_folder(staging);
}

TEST(AtomicFile, UnwritableDestinationsAreNamed) {
  TempDir dir;
  EXPECT_THAT(error_of([&] { AtomicFile file(dir / "no-such-folder" / "x"); }),
              HasSubstr("does not exist"));
  EXPECT_THAT(error_of([&] { AtomicFile file(dir.path()); }), HasSubstr("is a folder"));
}

TEST(Npy, HugeClaimedShapeFailsBeforeAllocating) {
  TempDir dir;
  // 2^20 x 2^20 float32 = 4 TiB: above any limit, but no overflow.
  const fs::path path = dir / "huge.npy";
  {
    std::ofstream out(path, std::ios::binary);
    std::string header =
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1048576, 1048576), }\n";
    out << "\x93NUMPY" << '\x01' << '\x00' << static_cast<char>(header.size()) << '\x00' << header;
  }
  EXPECT_THAT(error_of([&] { read_npy(path); }), HasSubstr("truncated"));
}

}  // namespace
}  // namespace tokmap::io
