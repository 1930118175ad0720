#pragma once
// File formats and safe file handling: memory mapping, atomic writes (temp + rename),
// safetensors (read and streaming write), .npy and TSV/CSV matrices.
// Every reader treats its input as untrusted: sizes are checked before allocation, and
// errors name the file and what is wrong (tokmap::Error).
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace tokmap::io {

namespace fs = std::filesystem;

// Largest allocation any reader makes from numbers found in a file; larger claims are refused
// before allocating. Raise it with the environment variable TOKMAP_MAX_BYTES (bytes).
std::uint64_t max_input_bytes();

// ---------------------------------------------------------------------------------------------
// Whole files

// Read-only memory map of a whole file. Empty files map to an empty span.
class MappedFile {
 public:
  explicit MappedFile(const fs::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&&) noexcept;
  MappedFile& operator=(MappedFile&&) noexcept;

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  std::string_view text() const { return {reinterpret_cast<const char*>(data_), size_}; }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

std::string read_text_file(const fs::path& path);

// Writes to `<path>.tmp-XXXXXX` in the same folder; commit() renames it over `path`.
// Destroyed without commit (error, exception, Ctrl-C via remove_pending_temp_files): the
// temporary file is removed and `path` is untouched.
class AtomicFile {
 public:
  explicit AtomicFile(fs::path path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(std::span<const std::byte> data);
  void write(std::string_view text);
  // Write at an absolute offset (file grows as needed); for streaming writers.
  void pwrite(std::uint64_t offset, std::span<const std::byte> data);
  void resize(std::uint64_t size);
  void commit();
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
  std::string temp_path_;
  int fd_ = -1;
  int pending_slot_ = -1;  // index in the signal-safe table of temporary files
  bool committed_ = false;
};

void write_file_atomically(const fs::path& path, std::string_view contents);

// Async-signal-safe: unlinks every temporary file of live AtomicFiles. Called by the CLI's
// SIGINT/SIGTERM handler so an interrupted run leaves no partial output.
void remove_pending_temp_files() noexcept;

// A temporary folder (e.g. a report being assembled) that remove_pending_temp_files() deletes,
// with everything in it, when the run is interrupted.
void register_pending_folder(const fs::path& folder);
void unregister_pending_folder(const fs::path& folder);

// A folder assembled in a temporary sibling and moved into place by commit(), so a failed or
// interrupted run never leaves a half-written folder (a report). The constructor fails at once
// when the destination cannot be written. A previous folder at the destination is replaced only
// at commit; staging folders left by a killed run are cleaned up by the next one.
class StagingFolder {
 public:
  explicit StagingFolder(fs::path target);
  ~StagingFolder();
  StagingFolder(const StagingFolder&) = delete;
  StagingFolder& operator=(const StagingFolder&) = delete;

  const fs::path& path() const { return staging_; }  // write here
  const fs::path& target() const { return target_; }
  void commit();

 private:
  fs::path target_;
  fs::path staging_;
  int lock_fd_ = -1;
  bool committed_ = false;
};

// ---------------------------------------------------------------------------------------------
// safetensors

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };
std::string_view dtype_name(DType dtype);
std::size_t dtype_size(DType dtype);

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0;  // byte offsets relative to the start of the data section
  std::uint64_t end = 0;
  std::uint64_t numel() const;
};

// A validated, memory-mapped safetensors file. open() checks: file at least 8 bytes, header
// length within the file and below a bound, header is a JSON object of tensors, known dtypes,
// non-negative shapes whose byte size (overflow-checked) equals end - begin, offsets inside the
// data section and not overlapping.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const fs::path& path);

  const fs::path& path() const { return file_.path(); }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const TensorInfo* find(std::string_view name) const;  // nullptr if absent
  const TensorInfo& get(std::string_view name) const;   // throws naming the file and tensor
  std::span<const std::byte> raw(const TensorInfo& tensor) const;

  // Converts a F32/F16/BF16/F64 tensor to float32; throws for other dtypes.
  std::vector<float> to_f32(const TensorInfo& tensor) const;
  void to_f32(const TensorInfo& tensor, std::span<float> out) const;
  // Converts an integer tensor (I64/I32/I16/I8/U8) to int64.
  std::vector<std::int64_t> to_i64(const TensorInfo& tensor) const;

 private:
  MappedFile file_;
  std::uint64_t data_offset_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Streaming safetensors writer: declare every tensor first, then write slices at element
// offsets in any order, then commit(). Memory use is independent of the tensor sizes.
class SafetensorsWriter {
 public:
  explicit SafetensorsWriter(fs::path path);
  void set_metadata(std::string key, std::string value);
  void declare(std::string name, DType dtype, std::vector<std::int64_t> shape);
  // Writes the header and sizes the file; call once, after every declare().
  void begin();
  void write(std::string_view name, std::uint64_t element_offset, std::span<const std::byte> data);
  void write(std::string_view name, std::uint64_t element_offset, std::span<const float> data);
  void write(std::string_view name, std::uint64_t element_offset,
             std::span<const std::int64_t> data);
  void commit();

 private:
  void check_dtype(std::string_view name, DType dtype) const;
  fs::path path_;
  std::map<std::string, std::string> metadata_;
  std::vector<TensorInfo> tensors_;
  std::unique_ptr<AtomicFile> file_;
  std::uint64_t data_offset_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Matrices (.npy, .tsv, .csv)

// Row-major float matrix.
struct Matrix {
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::vector<float> data;  // (rows, cols) row-major
  float* row(std::size_t i) { return data.data() + i * cols; }
  const float* row(std::size_t i) const { return data.data() + i * cols; }
};

// .npy version 1/2/3, little-endian float32 or float64 ('<f4', '<f8'), 2-D, C order.
Matrix read_npy(const fs::path& path);
void write_npy(const fs::path& path, const Matrix& matrix);  // float32, atomically

// Numbers only, separated by tabs (.tsv) or commas (.csv); every row the same length.
Matrix read_delimited(const fs::path& path, char delimiter);
void write_delimited(const fs::path& path, const Matrix& matrix, char delimiter);

// Rejects NaN/Inf, naming the file and the first offending row (and `what`, e.g. "layer 3",
// when given: "F: layer 3, row 2, column 5 is NaN; ...").
void check_finite(const Matrix& matrix, const fs::path& path, std::string_view what = {});

// Index of the first NaN or infinite value, or values.size() when all are finite. A branch-free
// scan of the exponent bits in blocks (vectorised), so it costs about a memory read.
std::size_t first_non_finite(std::span<const float> values);

// float16 / bfloat16 conversion (round-to-nearest-even for the narrowing direction).
float f16_to_f32(std::uint16_t h);
float bf16_to_f32(std::uint16_t h);

}  // namespace tokmap::io
