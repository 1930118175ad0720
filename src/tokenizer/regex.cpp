// Regular expressions on PCRE2 (UTF + UCP, JIT-compiled), for patterns written for Oniguruma.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <string>

#include "tokenizer/tokenizer_impl.hpp"

namespace tokmap::tokenizer::detail {

// OpenAI's GPT-2 pattern; \s is Unicode White_Space in Oniguruma, Rust regex and tiktoken.
const char kGpt2Pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

namespace {

// White_Space, which the Unicode standard keeps stable (PCRE2's \s under UCP differs by version:
// 10.42 leaves out U+0085), and its complement, for use inside character classes.
constexpr std::string_view kSpace =
    "\\t-\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}"
    "\\x{205F}\\x{3000}";
constexpr std::string_view kNotSpace =
    "\\x{0}-\\x{8}\\x{E}-\\x{1F}\\x{21}-\\x{84}\\x{86}-\\x{9F}\\x{A1}-\\x{167F}\\x{1681}-\\x{1FFF}"
    "\\x{200B}-\\x{2027}\\x{202A}-\\x{202E}\\x{2030}-\\x{205E}\\x{2060}-\\x{2FFF}"
    "\\x{3001}-\\x{10FFFF}";
// Oniguruma's Unicode \w: letters, marks, decimal digits, connector punctuation.
constexpr std::string_view kWord = "\\p{L}\\p{M}\\p{Nd}\\p{Pc}";

// Rewrites the escapes whose meaning differs between Oniguruma and PCRE2.
std::string translate(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 16);
  bool in_class = false;
  std::size_t class_start = 0;  // position in `pattern` just after '[' or '[^'
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char e = pattern[++i];
      switch (e) {
        case 's':
          out += in_class ? std::string(kSpace) : "[" + std::string(kSpace) + "]";
          break;
        case 'S':
          out += in_class ? std::string(kNotSpace) : "[" + std::string(kNotSpace) + "]";
          break;
        case 'w':
          out += in_class ? std::string(kWord) : "[" + std::string(kWord) + "]";
          break;
        case 'W':
          if (in_class) {
            out += "\\W";  // rare; PCRE2's own (UCP) meaning
          } else {
            out += "[^" + std::string(kWord) + "]";
          }
          break;
        case 'h':  // Oniguruma: a hexadecimal digit (PCRE2: horizontal space)
          out += in_class ? "0-9a-fA-F" : "[0-9a-fA-F]";
          break;
        case 'H':
          out += in_class ? "\\x{0}-/:-@G-`g-\\x{10FFFF}" : "[^0-9a-fA-F]";
          break;
        case 'u':  // \uHHHH
          if (i + 4 < pattern.size()) {
            std::string hex(pattern.substr(i + 1, 4));
            if (hex.size() == 4 && hex.find_first_not_of("0123456789abcdefABCDEF") == hex.npos) {
              out += "\\x{" + hex + "}";
              i += 4;
              break;
            }
          }
          out += "\\u";
          break;
        default:
          out += '\\';
          out += e;
      }
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      class_start = i + 1;
      continue;
    }
    if (in_class && c == ']' && i != class_start) {
      in_class = false;
    } else if (in_class && c == '[' && i + 1 < pattern.size() && pattern[i + 1] == ':') {
      // POSIX class [:alpha:] inside a class: copy through its closing ":]".
      const std::size_t close = pattern.find(":]", i + 2);
      if (close != pattern.npos) {
        out.append(pattern.substr(i, close + 2 - i));
        i = close + 1;
        continue;
      }
    }
    out += c;
  }
  return out;
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  if (pcre2_get_error_message(code, buffer, sizeof buffer) < 0)
    return "code " + std::to_string(code);
  return reinterpret_cast<const char*>(buffer);
}

}  // namespace

// Match data and JIT stack are per thread: pcre2_code is shareable, match data is not.
struct Regex::MatchState {
  pcre2_match_data* match_data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  MatchState() {
    match_data = pcre2_match_data_create(1, nullptr);
    context = pcre2_match_context_create(nullptr);
    // A long run of whitespace backtracks once per run, never deeply, but a generous stack
    // keeps odd inputs from failing with "JIT stack limit".
    jit_stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
    if (context && jit_stack) pcre2_jit_stack_assign(context, nullptr, jit_stack);
  }
  ~MatchState() {
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(match_data);
  }
};

Regex::MatchState& Regex::thread_state() {
  thread_local MatchState state;
  if (!state.match_data || !state.context) throw Error("tokenizer: out of memory for PCRE2");
  return state;
}

Regex::Regex(std::string_view oniguruma_pattern) { compile(translate(oniguruma_pattern)); }

std::shared_ptr<const Regex> Regex::literal(std::string_view text) {
  std::shared_ptr<Regex> shared(new Regex());
  Regex& regex = *shared;
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  regex.code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(),
                              PCRE2_UTF | PCRE2_LITERAL, &error_code, &error_offset, nullptr);
  if (!regex.code_) throw Error("bad literal pattern: " + pcre2_message(error_code));
  regex.jit_ = pcre2_jit_compile(regex.code_, PCRE2_JIT_COMPLETE) == 0;
  return shared;
}

void Regex::compile(const std::string& pattern) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                        PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, nullptr);
  if (!code_) {
    throw Error("malformed regex: " + pcre2_message(error_code) + " at offset " +
                std::to_string(error_offset) + " of " + quote_for_message(pattern, 80));
  }
  // Without JIT (unsupported platform) the interpreter still gives the same matches, slower.
  jit_ = pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE) == 0;
}

Regex::~Regex() { pcre2_code_free(code_); }

bool Regex::next_match(MatchState& state, std::string_view text, std::size_t offset,
                       std::size_t& begin, std::size_t& end) const {
  const auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  // The caller has validated the UTF-8, so PCRE2 need not check it again on every call
  // (which would make splitting a long text quadratic).
  const int rc = jit_ ? pcre2_jit_match(code_, subject, text.size(), offset, 0, state.match_data,
                                        state.context)
                      : pcre2_match(code_, subject, text.size(), offset, PCRE2_NO_UTF_CHECK,
                                    state.match_data, state.context);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) throw Error("tokenizer: regex match failed: " + pcre2_message(rc));
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(state.match_data);
  begin = ovector[0];
  end = ovector[1];
  if (end < begin) return false;  // \K tricks; never in tokenizer patterns
  return true;
}

}  // namespace tokmap::tokenizer::detail
