// tokenizer.json: load from arbitrary bytes; when it loads, encode and decode a fixed text.
#include <string_view>

#include "tokenizer/tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto tokenizer = tokmap::tokenizer::Tokenizer::from_tokenizer_json_text(
        std::string_view(reinterpret_cast<const char*>(data), size));
    const auto encoding = tokenizer.encode("Hello world, it's 2024! <|endoftext|> naïve");
    (void)tokenizer.decode(encoding.ids);
    for (const auto id : encoding.ids) (void)tokenizer.display(id);
  } catch (const tokmap::Error&) {
  }
  return 0;
}
