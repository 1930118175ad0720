#include "io/io.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace tokmap::io {

std::uint64_t max_input_bytes() {
  // 16 GiB unless the user says otherwise: larger than any model tokmap can run on 24 GiB,
  // small enough that a lying header fails before allocating.
  static const std::uint64_t limit = [] {
    if (const char* value = std::getenv("TOKMAP_MAX_BYTES")) {
      char* end = nullptr;
      const unsigned long long parsed = std::strtoull(value, &end, 10);
      if (end != value && *end == '\0' && parsed > 0) return static_cast<std::uint64_t>(parsed);
    }
    return std::uint64_t{16} << 30;
  }();
  return limit;
}

namespace {

std::string errno_text() { return std::strerror(errno); }

}  // namespace

MappedFile::MappedFile(const fs::path& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path.string() + ": cannot open: " + errno_text());
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    const std::string reason = errno_text();
    ::close(fd);
    throw Error(path.string() + ": cannot stat: " + reason);
  }
  if (S_ISDIR(info.st_mode)) {
    ::close(fd);
    throw Error(path.string() + ": is a folder, expected a file");
  }
  size_ = static_cast<std::size_t>(info.st_size);
  if (size_ > 0) {
    void* mapped = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapped == MAP_FAILED) {
      const std::string reason = errno_text();
      ::close(fd);
      throw Error(path.string() + ": cannot map: " + reason);
    }
    data_ = static_cast<const std::byte*>(mapped);
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)), data_(other.data_), size_(other.size_) {
  other.data_ = nullptr;
  other.size_ = 0;
}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
    path_ = std::move(other.path_);
    data_ = other.data_;
    size_ = other.size_;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

std::string read_text_file(const fs::path& path) {
  MappedFile file(path);
  return std::string(file.text());
}

// ---------------------------------------------------------------------------------------------
// Temporary files still pending, kept in a fixed table so the signal handler can unlink them
// without allocating or locking.

namespace {

constexpr int kMaxPendingTemps = 64;
constexpr std::size_t kMaxTempPath = 4096;
struct PendingSlot {
  std::atomic<bool> used{false};
  char path[kMaxTempPath];
};
PendingSlot g_pending[kMaxPendingTemps];

int register_pending(const std::string& path) {
  if (path.size() >= kMaxTempPath) return -1;
  for (int i = 0; i < kMaxPendingTemps; ++i) {
    bool expected = false;
    if (!g_pending[i].used.load() && g_pending[i].used.compare_exchange_strong(expected, true)) {
      std::memcpy(g_pending[i].path, path.c_str(), path.size() + 1);
      return i;
    }
  }
  return -1;
}

void unregister_pending(int slot) {
  if (slot >= 0) g_pending[slot].used.store(false);
}

PendingSlot g_pending_folders[4];

// Deletes a folder tree with only async-signal-safe calls and fixed-size buffers.
void remove_tree(const char* path, int depth) noexcept {
  if (depth > 8) return;
  if (DIR* dir = ::opendir(path)) {
    while (const dirent* entry = ::readdir(dir)) {
      if (std::strcmp(entry->d_name, ".") == 0 || std::strcmp(entry->d_name, "..") == 0) continue;
      char child[kMaxTempPath];
      const std::size_t a = std::strlen(path), b = std::strlen(entry->d_name);
      if (a + b + 2 > sizeof child) continue;
      std::memcpy(child, path, a);
      child[a] = '/';
      std::memcpy(child + a + 1, entry->d_name, b + 1);
      if (::unlink(child) != 0) remove_tree(child, depth + 1);
    }
    ::closedir(dir);
  }
  ::rmdir(path);
}

}  // namespace

void register_pending_folder(const fs::path& folder) {
  const std::string path = folder.string();
  if (path.size() >= kMaxTempPath) return;
  for (auto& slot : g_pending_folders) {
    bool expected = false;
    if (slot.used.compare_exchange_strong(expected, true)) {
      std::memcpy(slot.path, path.c_str(), path.size() + 1);
      return;
    }
  }
}

void unregister_pending_folder(const fs::path& folder) {
  for (auto& slot : g_pending_folders) {
    if (slot.used.load() && folder.string() == slot.path) slot.used.store(false);
  }
}

void remove_pending_temp_files() noexcept {
  for (auto& slot : g_pending) {
    if (slot.used.load()) ::unlink(slot.path);
  }
  for (auto& slot : g_pending_folders) {
    if (slot.used.load()) remove_tree(slot.path, 0);
  }
}

AtomicFile::AtomicFile(fs::path path) : path_(std::move(path)) {
  const fs::path folder = path_.has_parent_path() ? path_.parent_path() : fs::path(".");
  std::error_code ec;
  if (fs::is_directory(path_, ec))
    throw Error(path_.string() + ": is a folder, cannot write a file there");
  if (!fs::is_directory(folder, ec)) {
    throw Error(path_.string() + ": cannot write: folder " + folder.string() + " does not exist");
  }
  std::string pattern = (folder / ("." + path_.filename().string() + ".tmp-XXXXXX")).string();
  fd_ = ::mkstemp(pattern.data());
  if (fd_ < 0) throw Error(path_.string() + ": cannot write: " + errno_text());
  ::fchmod(fd_, 0644);
  temp_path_ = pattern;
  pending_slot_ = register_pending(temp_path_);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !temp_path_.empty()) {
    ::unlink(temp_path_.c_str());
    unregister_pending(pending_slot_);
  }
}

void AtomicFile::write(std::span<const std::byte> data) {
  const std::byte* cursor = data.data();
  std::size_t left = data.size();
  while (left > 0) {
    const ssize_t written = ::write(fd_, cursor, left);
    if (written < 0) {
      if (errno == EINTR) continue;
      throw Error(path_.string() + ": write failed: " + errno_text());
    }
    cursor += written;
    left -= static_cast<std::size_t>(written);
  }
}

void AtomicFile::write(std::string_view text) {
  write(std::as_bytes(std::span<const char>(text.data(), text.size())));
}

void AtomicFile::pwrite(std::uint64_t offset, std::span<const std::byte> data) {
  const std::byte* cursor = data.data();
  std::size_t left = data.size();
  while (left > 0) {
    const ssize_t written = ::pwrite(fd_, cursor, left, static_cast<off_t>(offset));
    if (written < 0) {
      if (errno == EINTR) continue;
      throw Error(path_.string() + ": write failed: " + errno_text());
    }
    cursor += written;
    offset += static_cast<std::uint64_t>(written);
    left -= static_cast<std::size_t>(written);
  }
}

void AtomicFile::resize(std::uint64_t size) {
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
    throw Error(path_.string() + ": cannot size file: " + errno_text());
  }
}

void AtomicFile::commit() {
  if (committed_) return;
  if (::fsync(fd_) != 0 && errno != EINVAL) {
    throw Error(path_.string() + ": cannot flush: " + errno_text());
  }
  ::close(fd_);
  fd_ = -1;
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    throw Error(path_.string() + ": cannot replace: " + errno_text());
  }
  committed_ = true;
  unregister_pending(pending_slot_);
}

void write_file_atomically(const fs::path& path, std::string_view contents) {
  AtomicFile file(path);
  file.write(contents);
  file.commit();
}

// ---------------------------------------------------------------------------------------------

float f16_to_f32(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  std::uint32_t exponent = (h >> 10) & 0x1fu;
  std::uint32_t mantissa = h & 0x3ffu;
  std::uint32_t bits;
  if (exponent == 0) {
    if (mantissa == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exponent = 127 - 15 + 1;
      while ((mantissa & 0x400u) == 0) {
        mantissa <<= 1;
        --exponent;
      }
      mantissa &= 0x3ffu;
      bits = sign | (exponent << 23) | (mantissa << 13);
    }
  } else if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else {
    bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
  }
  float result;
  std::memcpy(&result, &bits, sizeof result);
  return result;
}

float bf16_to_f32(std::uint16_t h) {
  const std::uint32_t bits = static_cast<std::uint32_t>(h) << 16;
  float result;
  std::memcpy(&result, &bits, sizeof result);
  return result;
}

}  // namespace tokmap::io
