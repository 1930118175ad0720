// config.json: any bytes parse to a Config or fail with tokmap::Error.
#include <string_view>

#include "model/model.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto config = tokmap::model::parse_config(
        std::string_view(reinterpret_cast<const char*>(data), size), "config.json");
    (void)config;
  } catch (const tokmap::Error&) {
  }
  return 0;
}
