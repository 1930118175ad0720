// The BPE encoder on arbitrary bytes with the real GPT-2 vocabulary: strict mode either throws
// (invalid UTF-8) or round-trips; lossy mode always succeeds and its offsets tile the input.
#include <cstdlib>
#include <string>
#include <string_view>

#include "tokenizer/tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto tokenizer = tokmap::tokenizer::Tokenizer::from_folder(TOKMAP_FUZZ_MODEL_DIR);
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto strict = tokenizer.encode(text);
    if (tokenizer.decode(strict.ids) != text) std::abort();
  } catch (const tokmap::Error&) {
  }
  tokmap::tokenizer::EncodeOptions lossy;
  lossy.lossy = true;
  const auto encoding = tokenizer.encode(text, lossy);
  std::size_t expected_begin = 0;
  for (const auto& [begin, end] : encoding.offsets) {
    if (begin != expected_begin || end < begin || end > size) std::abort();
    expected_begin = end;
  }
  if (expected_begin != size) std::abort();
  for (const auto id : encoding.ids) (void)tokenizer.display(id);
  return 0;
}
