// GPT-2's pre-tokenizer regex on PCRE2 (UTF + UCP, JIT-compiled).
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <string>

#include "tokenizer/tokenizer_impl.hpp"

namespace tokmap::tokenizer::detail {
namespace {

// OpenAI's pattern is
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// where \s is Unicode White_Space (Rust regex in Hugging Face and tiktoken). PCRE2's \s under
// UCP differs by version (10.42 leaves out U+0085), so the class is spelled out: the
// White_Space property, which the Unicode standard keeps stable.
// clang-format off
#define TOKMAP_WHITE_SPACE \
  "\\t-\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
constexpr const char kPattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d"
    "| ?\\p{L}+"
    "| ?\\p{N}+"
    "| ?[^" TOKMAP_WHITE_SPACE "\\p{L}\\p{N}]+"
    "|[" TOKMAP_WHITE_SPACE "]+(?![^" TOKMAP_WHITE_SPACE "])"
    "|[" TOKMAP_WHITE_SPACE "]+";
#undef TOKMAP_WHITE_SPACE
// clang-format on

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  if (pcre2_get_error_message(code, buffer, sizeof buffer) < 0)
    return "code " + std::to_string(code);
  return reinterpret_cast<const char*>(buffer);
}

}  // namespace

// Match data and JIT stack are per thread: pcre2_code is shareable, match data is not.
struct PreTokenizer::MatchState {
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

PreTokenizer::MatchState& PreTokenizer::thread_state() {
  thread_local MatchState state;
  if (!state.match_data || !state.context) throw Error("tokenizer: out of memory for PCRE2");
  return state;
}

PreTokenizer::PreTokenizer() {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kPattern), PCRE2_ZERO_TERMINATED,
                        PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, nullptr);
  if (!code_) {
    throw Error("tokenizer: cannot compile the GPT-2 pre-tokenizer regex: " +
                pcre2_message(error_code) + " at offset " + std::to_string(error_offset));
  }
  // Without JIT (unsupported platform) the interpreter still gives the same pieces, slower.
  jit_ = pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE) == 0;
}

PreTokenizer::~PreTokenizer() { pcre2_code_free(code_); }

bool PreTokenizer::next_piece(MatchState& state, std::string_view text, std::size_t offset,
                              std::size_t& begin, std::size_t& end) const {
  const auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  // The caller has validated the UTF-8, so PCRE2 need not check it again on every call
  // (which would make splitting a long text quadratic).
  const int rc = jit_ ? pcre2_jit_match(code_, subject, text.size(), offset, 0, state.match_data,
                                        state.context)
                      : pcre2_match(code_, subject, text.size(), offset, PCRE2_NO_UTF_CHECK,
                                    state.match_data, state.context);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) throw Error("tokenizer: pre-tokenizer regex failed: " + pcre2_message(rc));
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(state.match_data);
  begin = ovector[0];
  end = ovector[1];
  if (end <= begin) return false;  // an empty match would loop forever; the pattern has none
  return true;
}

}  // namespace tokmap::tokenizer::detail
