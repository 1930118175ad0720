#pragma once
// Helpers for the fuzz targets: the readers under test take paths, so each input is written to
// a per-process file in /dev/shm (memory-backed) first.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

namespace tokmap::fuzz {

inline std::filesystem::path scratch_file(const char* extension) {
  const std::filesystem::path dir =
      std::filesystem::exists("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path();
  return dir / ("tokmap-fuzz-" + std::to_string(::getpid()) + extension);
}

inline void write_input(const std::filesystem::path& path, const std::uint8_t* data,
                        std::size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
}

}  // namespace tokmap::fuzz
