// tokenizer.json with any pipeline: load from arbitrary bytes (only tokmap::Error may come
// out); when it loads, encode fixed texts (spans inside the text, in order), decode, display.
#include <string_view>

#include "fuzz/fuzz_pipelines.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto tokenizer = tokmap::tokenizer::Tokenizer::from_tokenizer_json_text(
        std::string_view(reinterpret_cast<const char*>(data), size));
    for (const std::string_view text :
         {std::string_view("Hello world, it's 2024! <s> na\xC3\xAFve  ab\tc"),
          std::string_view("\xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\xA4\x96 e\xCC\x81 \xEF\xAC\x81"),
          std::string_view(" ")}) {
      const auto encoding = tokenizer.encode(text);
      tokmap::fuzz::check_spans(text, encoding);
      (void)tokenizer.decode(encoding.ids);
      for (const auto id : encoding.ids) (void)tokenizer.display(id);
    }
  } catch (const tokmap::Error&) {
  }
  return 0;
}
