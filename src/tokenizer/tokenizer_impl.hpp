#pragma once
// Internals of the tokenizer module, shared by its .cpp files (not a public header).
//
// A tokenizer is a Hugging Face pipeline: added tokens are cut out of the text first, the rest is
// normalized (text changes keep an alignment to the original bytes), pre-tokenized into pieces,
// and each piece goes through the model (BPE over bytes or characters, or WordPiece); the
// post-processor adds BOS/CLS/SEP. GPT-2's vocab.json + merges.txt is the same pipeline with a
// ByteLevel pre-tokenizer and no post-processor.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
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

// The code point at text[pos] of valid UTF-8 and its length.
inline char32_t decode_utf8(std::string_view text, std::size_t pos, std::size_t& length) {
  const auto b = [&](std::size_t i) { return char32_t(static_cast<unsigned char>(text[pos + i])); };
  const char32_t lead = b(0);
  if (lead < 0x80) {
    length = 1;
    return lead;
  }
  if (lead < 0xE0) {
    length = 2;
    return ((lead & 0x1F) << 6) | (b(1) & 0x3F);
  }
  if (lead < 0xF0) {
    length = 3;
    return ((lead & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
  }
  length = 4;
  return ((lead & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
}

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
// Unicode properties as Rust's `char` methods define them (unicode.cpp, on ICU)

bool is_white_space(char32_t c);      // char::is_whitespace (White_Space)
bool is_alphanumeric(char32_t c);     // char::is_alphanumeric (Alphabetic or N*)
bool is_numeric(char32_t c);          // char::is_numeric (Nd, Nl, No)
bool is_punctuation(char32_t c);      // ASCII punctuation or P* (Hugging Face's is_punc)
bool is_other(char32_t c);            // C* (BertNormalizer's control characters, without \t\n\r)
bool is_nonspacing_mark(char32_t c);  // Mn (BertNormalizer's accents)
bool is_mark(char32_t c);             // M* (StripAccents)
bool is_word_char(char32_t c);        // Rust regex \w (single_word added tokens)
bool is_chinese_char(char32_t c);     // BertNormalizer's CJK blocks
// char::to_lowercase, appended as UTF-8.
void append_lowercase(std::string& out, char32_t c);

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
// Regular expressions on PCRE2 (regex.cpp). Patterns are written for Oniguruma (what Hugging
// Face uses); the few places where PCRE2 reads them differently (\s, \S, \w, \W, \d, \h) are
// rewritten to the Unicode classes Oniguruma means.

class Regex {
 public:
  // Throws tokmap::Error("...") with PCRE2's message and the offset on a malformed pattern.
  explicit Regex(std::string_view oniguruma_pattern);
  static std::shared_ptr<const Regex> literal(std::string_view text);  // `text` exactly
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Calls on_match(begin, end) for each non-overlapping match of valid UTF-8 `text`, in
  // order. After an empty match the search moves on by one character (as Oniguruma does).
  template <typename OnMatch>
  void for_each_match(std::string_view text, OnMatch&& on_match) const;

  // Calls on_piece(begin, end) for the matches and the stretches between them: the pieces
  // cover the text contiguously (the GPT-2 pre-tokenizer regex).
  template <typename OnPiece>
  void split(std::string_view text, OnPiece&& on_piece) const {
    std::size_t previous = 0;
    for_each_match(text, [&](std::size_t begin, std::size_t end) {
      if (begin > previous) on_piece(previous, begin);
      if (end > begin) on_piece(begin, end);
      previous = end;
    });
    if (previous < text.size()) on_piece(previous, text.size());
  }

  struct MatchState;
  static MatchState& thread_state();
  // One match at or after `offset`; false when there is none.
  bool next_match(MatchState& state, std::string_view text, std::size_t offset, std::size_t& begin,
                  std::size_t& end) const;

 private:
  Regex() = default;
  void compile(const std::string& pcre2_pattern);
  pcre2_real_code_8* code_ = nullptr;
  bool jit_ = false;
};

template <typename OnMatch>
void Regex::for_each_match(std::string_view text, OnMatch&& on_match) const {
  MatchState& state = thread_state();
  std::size_t offset = 0;
  std::size_t begin = 0;
  std::size_t end = 0;
  while (offset <= text.size() && next_match(state, text, offset, begin, end)) {
    on_match(begin, end);
    if (end > begin) {
      offset = end;
    } else {
      if (end >= text.size()) break;
      std::size_t length = 1;
      decode_utf8(text, end, length);
      offset = end + length;
    }
  }
}

// GPT-2's pre-tokenizer pattern (OpenAI's, in Oniguruma syntax).
extern const char kGpt2Pattern[];

// ---------------------------------------------------------------------------------------------
// Text with an alignment to the original input (normalize.cpp)

struct Span {
  std::size_t begin;
  std::size_t end;
};

// A stretch of text being tokenized: either a view of the original input (identity alignment
// from `origin`), or normalized text where byte i came from original bytes align[i].
struct Aligned {
  std::string_view text;
  std::string storage;      // owns `text` when not a view of the input
  std::vector<Span> align;  // empty: identity
  std::size_t origin = 0;

  Aligned() = default;
  Aligned(const Aligned& other) { *this = other; }
  Aligned(Aligned&& other) noexcept { *this = std::move(other); }
  Aligned& operator=(const Aligned& other) {
    if (this == &other) return *this;
    const bool owned = other.owns();
    storage = other.storage;
    text = owned ? std::string_view(storage) : other.text;
    align = other.align;
    origin = other.origin;
    return *this;
  }
  Aligned& operator=(Aligned&& other) noexcept {
    if (this == &other) return *this;
    const bool owned = other.owns();
    storage = std::move(other.storage);
    text = owned ? std::string_view(storage) : other.text;
    align = std::move(other.align);
    origin = other.origin;
    return *this;
  }
  bool owns() const { return !storage.empty() && text.data() == storage.data(); }

  Span original(std::size_t begin, std::size_t end) const {  // a range of `text`, end > begin
    if (align.empty()) return {origin + begin, origin + end};
    return {align[begin].begin, align[end - 1].end};
  }
  Span original_at(std::size_t position) const {  // an empty range at a boundary
    if (align.empty()) return {origin + position, origin + position};
    const std::size_t p = position < align.size() ? align[position].begin
                                                  : (align.empty() ? origin : align.back().end);
    return {p, p};
  }
  // A copy of [begin, end) that owns its text and alignment.
  Aligned slice(std::size_t begin, std::size_t end) const;
};

// Builds normalized text byte by byte, each output byte aligned to an original span.
struct AlignedBuilder {
  std::string text;
  std::vector<Span> align;
  void append(std::string_view bytes, Span from) {
    text.append(bytes);
    align.insert(align.end(), bytes.size(), from);
  }
  // Copies [begin, end) of `source` unchanged, keeping its alignment.
  void copy(const Aligned& source, std::size_t begin, std::size_t end);
  Aligned finish();
};

enum class NormalizerKind {
  kNfc,
  kNfd,
  kNfkc,
  kNfkd,
  kLowercase,
  kStrip,
  kStripAccents,
  kReplace,
  kPrepend,
  kBert,
};

struct Normalizer {
  NormalizerKind kind;
  bool strip_left = false, strip_right = false;  // Strip
  std::shared_ptr<const Regex> pattern;          // Replace
  std::string content;                           // Replace, Prepend
  // BertNormalizer
  bool clean_text = true, handle_chinese_chars = true, strip_accents = false, lowercase = true;

  Aligned apply(Aligned text) const;
};

// ---------------------------------------------------------------------------------------------
// Pre-tokenizers (pretokenize.cpp)

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

enum class PreTokenizerKind {
  kByteLevel,        // optional prefix space, optional GPT-2 regex (Isolated)
  kSplit,            // regex or string pattern
  kMetaspace,        // ' ' -> replacement, prepend, optional split
  kWhitespace,       // \w+|[^\w\s]+ kept, the rest removed
  kWhitespaceSplit,  // split on white space, removed
  kPunctuation,      // each punctuation character, with a behavior
  kDigits,           // digits isolated one by one or contiguous
  kBert,             // white space removed, punctuation isolated
  kCharDelimiter,    // one character, removed
};

struct PreTokenizer {
  PreTokenizerKind kind;
  std::shared_ptr<const Regex> pattern;  // Split, ByteLevel with use_regex, Whitespace
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;
  bool add_prefix_space = false;  // ByteLevel
  std::string replacement;        // Metaspace (UTF-8 of one character), CharDelimiterSplit
  enum class Prepend { kAlways, kFirst, kNever } prepend = Prepend::kAlways;  // Metaspace
  bool split = true;                                                          // Metaspace
  bool individual_digits = false;                                             // Digits

  bool changes_text() const {
    return kind == PreTokenizerKind::kMetaspace ||
           (kind == PreTokenizerKind::kByteLevel && add_prefix_space);
  }
};

// Where a pre-tokenizer cuts `text` (relative positions): the matches of its pattern and the
// stretches between them, in order and covering the text, as Hugging Face's find_matches gives
// them (a character predicate makes every matching character its own match).
struct Event {
  std::size_t begin;
  std::size_t end;
  bool match;
};
void split_events(const PreTokenizer& step, std::string_view text, std::vector<Event>& events);
// The pieces a behavior keeps (relative ranges, empty ones left out).
void apply_behavior(std::vector<Event>& events, SplitBehavior behavior, bool invert,
                    std::vector<Span>& ranges);

// A piece of one of the encoder's buffers.
struct Piece {
  std::size_t buffer;
  std::size_t begin;
  std::size_t end;
};

// ---------------------------------------------------------------------------------------------
// Added tokens (added.cpp): leftmost-longest matching of literal strings, as Hugging Face's
// Aho-Corasick automaton does.

struct AddedToken {
  std::string content;
  std::int32_t id = -1;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
  bool normalized = false;
};

class AddedMatcher {
 public:
  // `patterns[i]` is what is matched for tokens[i] (its content, normalized where it applies).
  void build(const std::vector<AddedToken>* tokens, std::vector<std::size_t> token_index,
             std::vector<std::string> patterns);
  bool empty() const { return patterns_.empty(); }
  struct Match {
    std::size_t begin;
    std::size_t end;
    std::size_t token;  // index into the tokens
  };
  // The matches in `text` in order, after the single_word/lstrip/rstrip rules; special tokens
  // are left out when `allow_special` is false.
  void find(std::string_view text, bool allow_special, std::vector<Match>& out) const;

 private:
  const std::vector<AddedToken>* tokens_ = nullptr;
  std::vector<std::size_t> token_index_;
  std::vector<std::string> patterns_;
  // A byte trie: node -> children (sorted by byte); terminal pattern per node (npos: none).
  struct Node {
    std::uint32_t first_child = 0;
    std::uint16_t child_count = 0;
    std::size_t pattern = SIZE_MAX;
  };
  std::vector<Node> nodes_;
  std::vector<std::pair<unsigned char, std::uint32_t>> edges_;
  std::array<bool, 256> first_byte_{};
};

}  // namespace detail

// Hash map keyed by std::string that looks up std::string_view without a copy.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using StringMap = std::unordered_map<std::string, std::int32_t, StringHash, std::equal_to<>>;

struct SpecialToken {
  std::string content;  // matched literally in the input
  std::int32_t id;
};

enum class ModelKind { kBpe, kWordPiece };

enum class DecoderKind {
  kByteLevel,
  kReplace,
  kByteFallback,
  kFuse,
  kStrip,
  kMetaspace,
  kWordPiece,
  kBpe,
};

struct DecoderStep {
  DecoderKind kind;
  std::string pattern, content;     // Replace (string pattern), Strip content, WordPiece prefix,
                                    // BPE suffix, Metaspace replacement
  std::size_t start = 0, stop = 0;  // Strip
  bool cleanup = true;              // WordPiece
  bool prepend = true;              // Metaspace: prepend_scheme != never
};

struct Tokenizer::Impl {
  Impl();

  // Identifies this vocabulary for the per-thread word cache (never reused).
  std::uint64_t instance_id;
  std::string name;  // the file, for messages

  std::vector<std::string> token_strings;   // id -> vocabulary form ("Ġthe", "▁the", "##ing")
  std::vector<std::string> token_bytes;     // id -> the text it stands for (" the", "ing")
  std::vector<std::uint32_t> token_length;  // id -> token_bytes[id].size(), hot in encode()
  std::vector<bool> is_added;               // id -> an added token (matched literally)

  // Model
  ModelKind model = ModelKind::kBpe;
  bool byte_level = true;                          // BPE over bytes (a ByteLevel pre-tokenizer)
  std::array<std::int32_t, 256> byte_token{};      // byte -> id of its token (byte-level BPE)
  std::array<std::int32_t, 256> fallback_token{};  // byte -> id of "<0xXX>" (-1: none)
  detail::MergeTable merges;
  StringMap vocab;        // vocabulary form -> id (BPE over characters, WordPiece)
  StringMap bytes_vocab;  // byte-level BPE with ignore_merges: raw bytes -> id
  std::int32_t unk_id = -1;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
  std::string continuing_subword_prefix;  // BPE and WordPiece ("##")
  std::string end_of_word_suffix;
  std::size_t max_input_chars_per_word = 100;  // WordPiece

  // Pipeline
  std::vector<detail::Normalizer> normalizers;
  std::vector<detail::PreTokenizer> pre_tokenizers;
  std::vector<detail::AddedToken> added;
  detail::AddedMatcher added_raw;         // normalized == false: matched in the original text
  detail::AddedMatcher added_normalized;  // normalized == true: matched after normalization
  std::vector<std::int32_t> prefix_ids, suffix_ids;  // post-processor, single sequence
  std::vector<DecoderStep> decoders;
  bool has_decoder = false;

  std::vector<SpecialToken> special_tokens;

  std::int32_t id_count() const { return std::int32_t(token_strings.size()); }
  void check_id(std::int32_t id) const;

  // Byte-level BPE of one pre-tokenized piece; appends its ids.
  void bpe(std::string_view piece, std::vector<std::int32_t>& ids) const;
  // BPE over characters (SentencePiece style) or WordPiece: appends ids and the number of
  // bytes of `piece` each covers.
  void char_model(std::string_view piece, std::vector<std::int32_t>& ids,
                  std::vector<std::uint32_t>& lengths) const;
};

}  // namespace tokmap::tokenizer
