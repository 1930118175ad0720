// Arbitrary text through small pipelines of every kind (fuzz_pipelines.hpp): strict encoding
// throws only tokmap::Error (invalid UTF-8); lossy encoding always works; spans stay inside the
// input and in order; decode and display never fail.
#include <string_view>

#include "fuzz/fuzz_pipelines.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto& all = tokmap::fuzz::pipelines();
  const auto& tokenizer = all[data[0] % all.size()];
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  for (const bool special : {true, false}) {
    tokmap::tokenizer::EncodeOptions options;
    options.add_special_tokens = special;
    options.allow_special = special;
    try {
      tokmap::fuzz::check_spans(text, tokenizer.encode(text, options));
    } catch (const tokmap::Error&) {
    }
    options.lossy = true;
    const auto encoding = tokenizer.encode(text, options);
    tokmap::fuzz::check_spans(text, encoding);
    (void)tokenizer.decode(encoding.ids);
    for (const auto id : encoding.ids) (void)tokenizer.display(id);
  }
  return 0;
}
