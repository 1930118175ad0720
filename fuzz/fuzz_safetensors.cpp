// safetensors header and tensor table: open, look up and convert every tensor; then the same
// bytes as a model's weights (name/shape validation against a fixed tiny config).
#include <filesystem>
#include <fstream>

#include "fuzz/fuzz_support.hpp"
#include "io/io.hpp"
#include "model/model.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::filesystem::path folder = [] {
    auto dir = tokmap::fuzz::scratch_file("-model");
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "config.json")
        << R"({"n_layer": 1, "n_head": 2, "n_embd": 4, "n_positions": 4, "vocab_size": 8})";
    return dir;
  }();
  const auto path = folder / "model.safetensors";
  tokmap::fuzz::write_input(path, data, size);
  try {
    const tokmap::io::SafetensorsFile file(path);
    for (const auto& tensor : file.tensors()) {
      if (tensor.numel() > (1u << 20)) continue;
      try {
        (void)file.to_f32(tensor);
      } catch (const tokmap::Error&) {
      }
      try {
        (void)file.to_i64(tensor);
      } catch (const tokmap::Error&) {
      }
    }
  } catch (const tokmap::Error&) {
  }
  try {
    const auto model = tokmap::model::Model::load(folder);
    (void)model.parameter_count();
  } catch (const tokmap::Error&) {
  }
  return 0;
}
