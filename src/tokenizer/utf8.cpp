// UTF-8 validation, U+FFFD replacement and display escaping for the tokenizer.
#include <algorithm>
#include <cstring>

#include "tokenizer/tokenizer_impl.hpp"

namespace tokmap::tokenizer::detail {
namespace {

bool is_continuation(unsigned char byte, unsigned char low = 0x80, unsigned char high = 0xBF) {
  return byte >= low && byte <= high;
}

// How a sequence starting at text[pos] fares: the number of bytes that fit the well-formed
// pattern, and whether they make a complete sequence.
struct SequenceCheck {
  std::size_t length;
  bool complete;
};

SequenceCheck check_sequence(std::string_view text, std::size_t pos) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[pos + i]); };
  const std::size_t available = text.size() - pos;
  const unsigned char lead = byte(0);
  if (lead < 0x80) return {1, true};
  // Table 3-7 of the Unicode standard: the allowed range of the second byte depends on the lead
  // byte (this is what rules out overlongs, surrogates and code points above U+10FFFF).
  std::size_t need;
  unsigned char second_low = 0x80, second_high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    need = 2;
  } else if (lead == 0xE0) {
    need = 3, second_low = 0xA0;
  } else if ((lead >= 0xE1 && lead <= 0xEC) || lead == 0xEE || lead == 0xEF) {
    need = 3;
  } else if (lead == 0xED) {
    need = 3, second_high = 0x9F;
  } else if (lead == 0xF0) {
    need = 4, second_low = 0x90;
  } else if (lead >= 0xF1 && lead <= 0xF3) {
    need = 4;
  } else if (lead == 0xF4) {
    need = 4, second_high = 0x8F;
  } else {
    return {1, false};  // 0x80..0xC1, 0xF5..0xFF never start a sequence
  }
  if (available < 2 || !is_continuation(byte(1), second_low, second_high)) return {1, false};
  for (std::size_t i = 2; i < need; ++i) {
    if (available <= i || !is_continuation(byte(i))) return {i, false};
  }
  return {need, true};
}

}  // namespace

std::size_t valid_sequence_length(std::string_view text, std::size_t pos) {
  const SequenceCheck check = check_sequence(text, pos);
  return check.complete ? check.length : 0;
}

std::size_t invalid_sequence_length(std::string_view text, std::size_t pos) {
  return check_sequence(text, pos).length;
}

std::size_t find_invalid_utf8(std::string_view text, std::size_t from) {
  const char* data = text.data();
  const std::size_t size = text.size();
  std::size_t pos = from;
  while (pos < size) {
    // Most text is ASCII: skip eight bytes at a time while no high bit is set.
    while (pos + 8 <= size) {
      std::uint64_t word;
      std::memcpy(&word, data + pos, 8);
      if (word & 0x8080808080808080ull) break;
      pos += 8;
    }
    if (pos >= size) break;
    if (static_cast<unsigned char>(data[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const SequenceCheck check = check_sequence(text, pos);
    if (!check.complete) return pos;
    pos += check.length;
  }
  return std::string_view::npos;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

LossyText replace_invalid_utf8(std::string_view text, std::size_t first_invalid) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
  LossyText result;
  result.text.reserve(text.size() + 16);
  std::size_t copied_until = 0;
  std::size_t pos = first_invalid;
  while (pos != std::string_view::npos) {
    result.text.append(text.substr(copied_until, pos - copied_until));
    const std::size_t length = invalid_sequence_length(text, pos);
    result.replacements.push_back({result.text.size(), pos, pos + length});
    result.text.append(kReplacement);
    result.replaced_bytes += length;
    copied_until = pos + length;
    pos = find_invalid_utf8(text, copied_until);
  }
  result.text.append(text.substr(copied_until));
  return result;
}

std::size_t LossyText::original_position(std::size_t new_position) const {
  // The last replacement starting at or before new_position decides the shift.
  auto after = std::upper_bound(
      replacements.begin(), replacements.end(), new_position,
      [](std::size_t position, const Replacement& r) { return position < r.new_begin; });
  if (after == replacements.begin()) return new_position;
  const Replacement& r = *(after - 1);
  if (new_position == r.new_begin) return r.original_begin;
  if (new_position < r.new_begin + kReplacementSize) return r.original_end;
  return r.original_end + (new_position - (r.new_begin + kReplacementSize));
}

std::string display_bytes(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(bytes.size() + 8);
  const auto append_byte_escape = [&](unsigned char byte) {
    out += "<0x";
    out += kHex[byte >> 4];
    out += kHex[byte & 0xF];
    out += '>';
  };
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    const auto byte = static_cast<unsigned char>(bytes[pos]);
    if (byte < 0x80) {
      // Control characters would break a one-line label (or a TSV cell): escape them.
      if (byte == '\n') {
        out += "\\n";
      } else if (byte == '\t') {
        out += "\\t";
      } else if (byte == '\r') {
        out += "\\r";
      } else if (byte < 0x20 || byte == 0x7F) {
        append_byte_escape(byte);
      } else {
        out += static_cast<char>(byte);
      }
      ++pos;
      continue;
    }
    const std::size_t length = valid_sequence_length(bytes, pos);
    if (length == 0) {
      // Part of a character (tokens often split multi-byte characters) or invalid: show the
      // byte itself rather than letting a terminal or browser print garbage.
      append_byte_escape(byte);
      ++pos;
      continue;
    }
    if (length == 2 && byte == 0xC2 && static_cast<unsigned char>(bytes[pos + 1]) < 0xA0) {
      // C1 control characters (U+0080..U+009F) are invisible too.
      append_byte_escape(byte);
      append_byte_escape(static_cast<unsigned char>(bytes[pos + 1]));
    } else {
      out.append(bytes.substr(pos, length));
    }
    pos += length;
  }
  return out;
}

std::string quote_for_message(std::string_view bytes, std::size_t max_bytes) {
  const bool truncated = bytes.size() > max_bytes;
  if (truncated) {
    bytes = bytes.substr(0, max_bytes);
    // Do not cut a character in half: back up to its first byte.
    while (!bytes.empty() && (static_cast<unsigned char>(bytes.back()) & 0xC0) == 0x80) {
      bytes.remove_suffix(1);
    }
    if (!bytes.empty() && static_cast<unsigned char>(bytes.back()) >= 0xC0) bytes.remove_suffix(1);
  }
  std::string out = "\"";
  for (char c : display_bytes(bytes)) {
    if (c == '"') out += '\\';
    out += c;
  }
  out += truncated ? "...\"" : "\"";
  return out;
}

}  // namespace tokmap::tokenizer::detail

namespace tokmap::tokenizer {

std::string whole_characters(std::string_view text, std::size_t begin, std::size_t end) {
  if (begin >= end || end > text.size()) return {};
  const auto continuation = [&](std::size_t i) {
    return (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80;
  };
  // Back to the lead byte of the character holding `begin` (at most 3 steps), forward past the
  // character holding end - 1.
  std::size_t first = begin;
  while (first > 0 && begin - first < 3 && continuation(first)) --first;
  std::size_t last = end;
  while (last < text.size() && last - end < 3 && continuation(last)) ++last;
  if (first == begin && last == end) return {};
  // The widened span must be whole, valid characters; otherwise the bytes stay as they are.
  for (std::size_t pos = first; pos < last;) {
    const std::size_t length = detail::valid_sequence_length(text, pos);
    if (length == 0 || pos + length > last) return {};
    pos += length;
  }
  return detail::display_bytes(text.substr(first, last - first));
}

}  // namespace tokmap::tokenizer
