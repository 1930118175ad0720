#pragma once
// Internals of the tokenizer module, shared by its .cpp files (not a public header).
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.hpp"

struct pcre2_real_code_8;  // pcre2_code from <pcre2.h>, kept out of this header

namespace tokmap::tokenizer {
namespace detail {

// ---------------------------------------------------------------------------------------------
// UTF-8 (utf8.cpp)

// Offset of the first byte that does not start a well-formed UTF-8 sequence (Unicode table 3-7:
// no overlongs, no surrogates, nothing above U+10FFFF), or npos if the text is valid.
std::size_t find_invalid_utf8(std::string_view text, std::size_t from = 0);

// Length of the well-formed sequence starting at text[pos], or 0 if it is ill-formed.
std::size_t valid_sequence_length(std::string_view text, std::size_t pos);

// Length of the "maximal subpart" of the ill-formed sequence at text[pos] (>= 1): the bytes one
// U+FFFD replaces, as in the Unicode standard's recommended practice (and WHATWG, Python, ICU).
std::size_t invalid_sequence_length(std::string_view text, std::size_t pos);

void append_utf8(std::string& out, char32_t code_point);

// Text made valid by replacing each maximal ill-formed subpart by U+FFFD, with enough
// bookkeeping to map byte positions of the new text back to the original.
struct LossyText {
  static constexpr std::size_t kReplacementSize = 3;  // U+FFFD in UTF-8: EF BF BD
  struct Replacement {
    std::size_t new_begin;  // U+FFFD occupies [new_begin, new_begin + 3) in `text`
    std::size_t original_begin;
    std::size_t original_end;
  };
  std::string text;
  std::vector<Replacement> replacements;  // ascending
  std::size_t replaced_bytes = 0;

  // A token boundary in `text` -> a boundary in the original input. A boundary inside a
  // U+FFFD maps to the end of the bytes it replaced, so spans stay contiguous and the token
  // holding the first byte of U+FFFD owns all the invalid bytes.
  std::size_t original_position(std::size_t new_position) const;
};
LossyText replace_invalid_utf8(std::string_view text, std::size_t first_invalid);

// Human-readable form of raw token bytes (see Tokenizer::display).
std::string display_bytes(std::string_view bytes);

// A short, printable, quoted rendering of untrusted bytes for error messages.
std::string quote_for_message(std::string_view bytes, std::size_t max_bytes = 40);

// ---------------------------------------------------------------------------------------------
// GPT-2's reversible byte <-> printable character mapping (byte_level.cpp)

// The character GPT-2 writes for byte b (e.g. 0x20 -> U+0120 'Ġ'), as UTF-8.
const std::array<std::string, 256>& byte_to_symbol();
// Raw bytes of a vocabulary string in byte-level form; false if some character is not one of
// the 256 byte symbols (then `bytes` is unspecified).
bool symbols_to_bytes(std::string_view symbols, std::string& bytes);

// ---------------------------------------------------------------------------------------------
// Merge table (bpe.cpp): (left id, right id) -> (rank, merged id), open addressing.

class MergeTable {
 public:
  struct Merge {
    std::uint32_t rank;
    std::int32_t merged_id;
  };
  static constexpr std::uint32_t kNoRank = UINT32_MAX;
  // The long-piece BPE packs a rank into 24 bits.
  static constexpr std::size_t kMaxMerges = std::size_t{1} << 24;

  void reserve(std::size_t merges);
  // A pair listed twice keeps its last rank, like Hugging Face and OpenAI's encoder.py.
  void insert(std::int32_t left, std::int32_t right, Merge merge);
  // Rank kNoRank if the pair never merges.
  Merge find(std::int32_t left, std::int32_t right) const {
    if (slots_.empty()) return {kNoRank, -1};
    const std::uint64_t key = pack(left, right);
    for (std::size_t i = slot_of(key);; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.key == key) return slot.merge;
      if (slot.key == kEmpty) return {kNoRank, -1};
    }
  }
  std::size_t size() const { return size_; }

 private:
  struct Slot {
    std::uint64_t key;
    Merge merge;
  };
  static constexpr std::uint64_t kEmpty = UINT64_MAX;  // ids are non-negative, never all ones
  static std::uint64_t pack(std::int32_t left, std::int32_t right) {
    return (std::uint64_t(std::uint32_t(left)) << 32) | std::uint32_t(right);
  }
  std::size_t slot_of(std::uint64_t key) const {
    return std::size_t((key * 0x9E3779B97F4A7C15ull) >> shift_);
  }
  void grow();

  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
  int shift_ = 64;
  std::size_t size_ = 0;
};

// ---------------------------------------------------------------------------------------------
// GPT-2 pre-tokenizer regex, compiled once with PCRE2 (pretokenize.cpp)

class PreTokenizer {
 public:
  PreTokenizer();
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  // Calls on_piece(begin, end) for each piece of `text` (valid UTF-8) in order; the pieces
  // cover the text contiguously.
  template <typename OnPiece>
  void split(std::string_view text, OnPiece&& on_piece) const;

  // PCRE2 match data of the calling thread (pcre2_code is shared, match data is not).
  struct MatchState;
  static MatchState& thread_state();
  // One match from `offset`; returns false at the end. Exposed for split().
  bool next_piece(MatchState& state, std::string_view text, std::size_t offset, std::size_t& begin,
                  std::size_t& end) const;

 private:
  pcre2_real_code_8* code_ = nullptr;
  bool jit_ = false;
};

template <typename OnPiece>
void PreTokenizer::split(std::string_view text, OnPiece&& on_piece) const {
  MatchState& state = thread_state();
  std::size_t offset = 0;
  std::size_t begin = 0;
  std::size_t end = 0;
  while (offset < text.size()) {
    if (!next_piece(state, text, offset, begin, end)) {
      on_piece(offset, text.size());  // cannot happen with this regex; keeps coverage total
      return;
    }
    if (begin > offset) on_piece(offset, begin);  // likewise: never leave bytes out
    on_piece(begin, end);
    offset = end;
  }
}

}  // namespace detail

struct SpecialToken {
  std::string content;  // matched literally in the input
  std::int32_t id;
};

struct Tokenizer::Impl {
  Impl();

  // Identifies this vocabulary for the per-thread word cache (never reused).
  std::uint64_t instance_id;

  std::vector<std::string> token_strings;      // id -> vocabulary form ("Ġthe")
  std::vector<std::string> token_bytes;        // id -> raw bytes (" the")
  std::vector<std::uint32_t> token_length;     // id -> token_bytes[id].size(), hot in encode()
  std::array<std::int32_t, 256> byte_token{};  // byte -> id of its one-byte token
  detail::MergeTable merges;
  std::vector<SpecialToken> special_tokens;
  detail::PreTokenizer pre_tokenizer;

  std::int32_t id_count() const { return std::int32_t(token_strings.size()); }
  void check_id(std::int32_t id) const;

  // BPE of one pre-tokenized piece; appends its ids.
  void bpe(std::string_view piece, std::vector<std::int32_t>& ids) const;
};

}  // namespace tokmap::tokenizer
