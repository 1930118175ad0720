// GPT-2's byte <-> character mapping ("bytes_to_unicode" in OpenAI's encoder.py): printable
// Latin-1 bytes stand for themselves, the other 68 bytes are shifted to U+0100..U+0143 so that
// every vocabulary entry is printable text (space 0x20 -> 'Ġ' U+0120, newline -> 'Ċ' U+010A).
#include "tokenizer/tokenizer_impl.hpp"

namespace tokmap::tokenizer::detail {
namespace {

constexpr bool stands_for_itself(int byte) {
  return (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) ||
         (byte >= 0xAE && byte <= 0xFF);
}

struct ByteLevelTables {
  std::array<std::string, 256> symbol_of_byte;
  std::array<std::int16_t, 0x144> byte_of_code_point;  // -1: not a byte symbol

  ByteLevelTables() {
    byte_of_code_point.fill(-1);
    char32_t next_shifted = 0x100;
    for (int byte = 0; byte < 256; ++byte) {
      const char32_t cp = stands_for_itself(byte) ? char32_t(byte) : next_shifted++;
      append_utf8(symbol_of_byte[byte], cp);
      byte_of_code_point[cp] = static_cast<std::int16_t>(byte);
    }
  }
};

const ByteLevelTables& tables() {
  static const ByteLevelTables instance;
  return instance;
}

}  // namespace

const std::array<std::string, 256>& byte_to_symbol() { return tables().symbol_of_byte; }

bool symbols_to_bytes(std::string_view symbols, std::string& bytes) {
  const auto& byte_of_code_point = tables().byte_of_code_point;
  bytes.clear();
  bytes.reserve(symbols.size());
  std::size_t pos = 0;
  while (pos < symbols.size()) {
    const auto lead = static_cast<unsigned char>(symbols[pos]);
    char32_t cp;
    if (lead < 0x80) {
      cp = lead;
      pos += 1;
    } else if ((lead & 0xE0) == 0xC0 && valid_sequence_length(symbols, pos) == 2) {
      // Every byte symbol is below U+0800, so two-byte sequences are all we need to decode.
      cp = (char32_t(lead & 0x1F) << 6) | (static_cast<unsigned char>(symbols[pos + 1]) & 0x3F);
      pos += 2;
    } else {
      return false;
    }
    if (cp >= byte_of_code_point.size() || byte_of_code_point[cp] < 0) return false;
    bytes += static_cast<char>(byte_of_code_point[cp]);
  }
  return true;
}

}  // namespace tokmap::tokenizer::detail
