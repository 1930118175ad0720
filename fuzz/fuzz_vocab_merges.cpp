// vocab.json + merges.txt: the input is split at the first NUL byte into the two files.
#include <algorithm>
#include <string_view>

#include "tokenizer/tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t cut = std::min(input.find('\0'), input.size());
  const std::string_view vocab = input.substr(0, cut);
  const std::string_view merges = cut < input.size() ? input.substr(cut + 1) : std::string_view{};
  try {
    const auto tokenizer = tokmap::tokenizer::Tokenizer::from_vocab_merges_text(vocab, merges);
    const auto encoding = tokenizer.encode("aa ab ba bb the\n\n  x");
    (void)tokenizer.decode(encoding.ids);
  } catch (const tokmap::Error&) {
  }
  return 0;
}
