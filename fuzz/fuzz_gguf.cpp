// GGUF files: the header parser on the bytes in memory (metadata, tensor table, bounds), the
// conversion of every small supported tensor, the tokenizer.json bridge, and the same bytes as
// a model file (config from metadata, names and shapes, Q/K un-permutation).
#include <filesystem>

#include "fuzz/fuzz_support.hpp"
#include "model/model.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto bytes = std::as_bytes(std::span(data, size));
  try {
    const tokmap::model::GgufFile file(bytes, "fuzz.gguf");
    for (const auto& info : file.tensors()) {
      if (!info.supported || info.size > (1u << 20)) continue;
      tokmap::model::Tensor tensor;
      tensor.name = info.name;
      tensor.type = info.type;
      tensor.shape = info.shape;
      tensor.bytes = file.data(info);
      std::vector<float> out(tensor.numel());
      try {
        tokmap::model::tensor_rows_to_f32(tensor, 0,
                                          tensor.numel() / std::size_t(info.shape.back()), out);
      } catch (const tokmap::Error&) {
      }
    }
    try {
      (void)tokmap::model::gguf_tokenizer_json(file);
    } catch (const tokmap::Error&) {
    }
  } catch (const tokmap::Error&) {
  }
  static const auto path = tokmap::fuzz::scratch_file(".gguf");
  tokmap::fuzz::write_input(path, data, size);
  try {
    const auto model = tokmap::model::Model::load(path);
    (void)model.parameter_count();
  } catch (const tokmap::Error&) {
  }
  return 0;
}
