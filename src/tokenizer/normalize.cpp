// Normalizers. Each keeps an alignment from every output byte to the original input bytes it
// came from, so that token spans point into the text the user gave. Unchanged characters keep
// their per-byte alignment; a changed character (or a composed sequence) aligns every output
// byte to the whole original span.
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include "tokenizer/tokenizer_impl.hpp"

namespace tokmap::tokenizer::detail {

Aligned Aligned::slice(std::size_t begin, std::size_t end) const {
  Aligned out;
  out.storage.assign(text.substr(begin, end - begin));
  out.text = out.storage;
  if (align.empty()) {
    out.align.resize(end - begin);
    for (std::size_t i = begin; i < end; ++i) out.align[i - begin] = {origin + i, origin + i + 1};
  } else {
    out.align.assign(align.begin() + std::ptrdiff_t(begin), align.begin() + std::ptrdiff_t(end));
  }
  return out;
}

void AlignedBuilder::copy(const Aligned& source, std::size_t begin, std::size_t end) {
  text.append(source.text.substr(begin, end - begin));
  if (source.align.empty()) {
    for (std::size_t i = begin; i < end; ++i) {
      align.push_back({source.origin + i, source.origin + i + 1});
    }
  } else {
    align.insert(align.end(), source.align.begin() + std::ptrdiff_t(begin),
                 source.align.begin() + std::ptrdiff_t(end));
  }
}

Aligned AlignedBuilder::finish() {
  Aligned out;
  out.storage = std::move(text);
  out.text = out.storage;
  out.align = std::move(align);
  return out;
}

namespace {

bool all_ascii(std::string_view text) {
  for (const char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

const UNormalizer2* icu_normalizer(NormalizerKind kind) {
  UErrorCode status = U_ZERO_ERROR;
  const UNormalizer2* normalizer = nullptr;
  switch (kind) {
    case NormalizerKind::kNfc:
      normalizer = unorm2_getNFCInstance(&status);
      break;
    case NormalizerKind::kNfd:
      normalizer = unorm2_getNFDInstance(&status);
      break;
    case NormalizerKind::kNfkc:
      normalizer = unorm2_getNFKCInstance(&status);
      break;
    default:
      normalizer = unorm2_getNFKDInstance(&status);
      break;
  }
  if (U_FAILURE(status) || !normalizer) throw Error("tokenizer: ICU normalizer unavailable");
  return normalizer;
}

// One segment (a character and the marks that may combine with it) in normal form, as UTF-8.
std::string normalize_segment(const UNormalizer2* normalizer, std::string_view segment) {
  std::u16string in(segment.size() + 1, u'\0');
  int32_t in_length = 0;
  UErrorCode status = U_ZERO_ERROR;
  u_strFromUTF8(in.data(), int32_t(in.size()), &in_length, segment.data(), int32_t(segment.size()),
                &status);
  if (U_FAILURE(status)) throw Error("tokenizer: ICU could not read a text segment");
  std::u16string out(std::size_t(in_length) * 4 + 8, u'\0');
  status = U_ZERO_ERROR;
  int32_t out_length =
      unorm2_normalize(normalizer, in.data(), in_length, out.data(), int32_t(out.size()), &status);
  if (status == U_BUFFER_OVERFLOW_ERROR) {
    out.assign(std::size_t(out_length) + 1, u'\0');
    status = U_ZERO_ERROR;
    out_length = unorm2_normalize(normalizer, in.data(), in_length, out.data(), int32_t(out.size()),
                                  &status);
  }
  if (U_FAILURE(status)) throw Error("tokenizer: ICU could not normalize a text segment");
  std::string result(std::size_t(out_length) * 3 + 4, '\0');
  int32_t result_length = 0;
  status = U_ZERO_ERROR;
  u_strToUTF8(result.data(), int32_t(result.size()), &result_length, out.data(), out_length,
              &status);
  if (U_FAILURE(status)) throw Error("tokenizer: ICU could not write a text segment");
  result.resize(std::size_t(result_length));
  return result;
}

Aligned unicode_normal_form(Aligned text, NormalizerKind kind) {
  if (all_ascii(text.text)) return text;  // ASCII is in every normal form
  const UNormalizer2* normalizer = icu_normalizer(kind);
  AlignedBuilder out;
  out.text.reserve(text.text.size());
  out.align.reserve(text.text.size());
  const std::string_view s = text.text;
  std::size_t pos = 0;
  while (pos < s.size()) {
    const std::size_t start = pos;
    std::size_t length = 1;
    decode_utf8(s, pos, length);
    pos += length;
    while (pos < s.size()) {
      const char32_t c = decode_utf8(s, pos, length);
      if (c < 0x300 || unorm2_hasBoundaryBefore(normalizer, UChar32(c))) break;
      pos += length;
    }
    const std::string_view segment = s.substr(start, pos - start);
    if (segment.size() == 1) {
      out.copy(text, start, pos);
      continue;
    }
    const std::string normal = normalize_segment(normalizer, segment);
    if (normal == segment) {
      out.copy(text, start, pos);
    } else {
      out.append(normal, text.original(start, pos));
    }
  }
  return out.finish();
}

// Rebuilds `text` character by character: `map(c, out)` appends the replacement of c (or
// nothing) and returns false to keep c unchanged.
template <typename Map>
Aligned map_characters(const Aligned& text, Map&& map) {
  AlignedBuilder out;
  out.text.reserve(text.text.size());
  out.align.reserve(text.text.size());
  const std::string_view s = text.text;
  std::string replacement;
  for (std::size_t pos = 0; pos < s.size();) {
    std::size_t length = 1;
    const char32_t c = decode_utf8(s, pos, length);
    replacement.clear();
    if (map(c, replacement)) {
      if (!replacement.empty()) out.append(replacement, text.original(pos, pos + length));
    } else {
      out.copy(text, pos, pos + length);
    }
    pos += length;
  }
  return out.finish();
}

Aligned to_lowercase(const Aligned& text) {
  bool changes = false;
  for (const char c : text.text) {
    if ((c >= 'A' && c <= 'Z') || static_cast<unsigned char>(c) >= 0x80) {
      changes = true;
      break;
    }
  }
  if (!changes) return text;
  return map_characters(text, [](char32_t c, std::string& out) {
    if (c < 0x80) {
      if (c < 'A' || c > 'Z') return false;
      out += char(c + 32);
      return true;
    }
    std::string lower;
    append_lowercase(lower, c);
    std::string same;
    append_utf8(same, c);
    if (lower == same) return false;
    out = std::move(lower);
    return true;
  });
}

// BertNormalizer drops non-spacing marks (Mn); the StripAccents normalizer every mark.
Aligned remove_accents(const Aligned& text, bool all_marks) {
  return map_characters(text, [all_marks](char32_t c, std::string&) {
    return all_marks ? is_mark(c) : is_nonspacing_mark(c);
  });
}

Aligned strip(const Aligned& text, bool left, bool right) {
  const std::string_view s = text.text;
  std::size_t begin = 0;
  std::size_t end = s.size();
  if (left) {
    while (begin < end) {
      std::size_t length = 1;
      if (!is_white_space(decode_utf8(s, begin, length))) break;
      begin += length;
    }
  }
  if (right) {
    while (end > begin) {
      std::size_t start = end - 1;
      while (start > begin && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
      std::size_t length = 1;
      if (!is_white_space(decode_utf8(s, start, length))) break;
      end = start;
    }
  }
  if (begin == 0 && end == s.size()) return text;
  return text.slice(begin, end);
}

Aligned replace(const Aligned& text, const Regex& pattern, const std::string& content) {
  AlignedBuilder out;
  std::size_t previous = 0;
  bool any = false;
  pattern.for_each_match(text.text, [&](std::size_t begin, std::size_t end) {
    if (end == begin) return;
    any = true;
    out.copy(text, previous, begin);
    if (!content.empty()) out.append(content, text.original(begin, end));
    previous = end;
  });
  if (!any) return text;
  out.copy(text, previous, text.text.size());
  return out.finish();
}

Aligned prepend(const Aligned& text, const std::string& content) {
  if (text.text.empty()) return text;
  AlignedBuilder out;
  out.append(content, text.original_at(0));
  out.copy(text, 0, text.text.size());
  return out.finish();
}

Aligned bert(const Aligned& input, const Normalizer& n) {
  Aligned text = input;
  if (n.clean_text) {
    text = map_characters(text, [](char32_t c, std::string& out) {
      if (c == 0 || c == 0xFFFD || (c != '\t' && c != '\n' && c != '\r' && is_other(c))) {
        return true;  // removed
      }
      if (c == ' ') return false;
      if (c == '\t' || c == '\n' || c == '\r' || is_white_space(c)) {
        out = " ";
        return true;
      }
      return false;
    });
  }
  if (n.handle_chinese_chars) {
    text = map_characters(text, [](char32_t c, std::string& out) {
      if (!is_chinese_char(c)) return false;
      out = " ";
      append_utf8(out, c);
      out += ' ';
      return true;
    });
  }
  if (n.strip_accents)
    text = remove_accents(unicode_normal_form(text, NormalizerKind::kNfd), false);
  if (n.lowercase) text = to_lowercase(text);
  return text;
}

}  // namespace

Aligned Normalizer::apply(Aligned text) const {
  switch (kind) {
    case NormalizerKind::kNfc:
    case NormalizerKind::kNfd:
    case NormalizerKind::kNfkc:
    case NormalizerKind::kNfkd:
      return unicode_normal_form(std::move(text), kind);
    case NormalizerKind::kLowercase:
      return to_lowercase(text);
    case NormalizerKind::kStrip:
      return strip(text, strip_left, strip_right);
    case NormalizerKind::kStripAccents:
      return remove_accents(text, true);
    case NormalizerKind::kReplace:
      return replace(text, *pattern, content);
    case NormalizerKind::kPrepend:
      return prepend(text, content);
    case NormalizerKind::kBert:
      return bert(text, *this);
  }
  return text;
}

}  // namespace tokmap::tokenizer::detail
