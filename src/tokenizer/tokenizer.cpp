// Encoding and decoding.
#include <cstdio>
#include <optional>
#include <unordered_map>

#include "tokenizer/tokenizer_impl.hpp"

namespace tokmap::tokenizer {
namespace {

// Real text repeats its words constantly, so each thread remembers the BPE result of the pieces
// it has seen. Per thread rather than shared: no locking on the hot path, and encode() stays
// safe to call concurrently. Bounded: when full it simply starts over.
class WordCache {
 public:
  static constexpr std::size_t kMaxEntries = 1 << 16;
  static constexpr std::size_t kMaxPieceBytes = 64;  // longer pieces are rare: not worth keeping

  // The cache of this thread, emptied if it last served another vocabulary.
  static WordCache& for_thread(const Tokenizer::Impl& impl) {
    thread_local WordCache cache;
    if (cache.owner_ != impl.instance_id) {
      cache.clear();
      cache.owner_ = impl.instance_id;
    }
    return cache;
  }

  // Appends the cached ids of `piece` to `ids`; false if not cached.
  bool append(std::string_view piece, std::vector<std::int32_t>& ids) const {
    const auto it = entries_.find(piece);
    if (it == entries_.end()) return false;
    const auto begin = ids_.begin() + it->second.first;
    ids.insert(ids.end(), begin, begin + it->second.count);
    return true;
  }

  void store(std::string_view piece, std::span<const std::int32_t> ids) {
    if (entries_.size() >= kMaxEntries) clear();
    entries_.emplace(std::string(piece),
                     Entry{std::uint32_t(ids_.size()), std::uint32_t(ids.size())});
    ids_.insert(ids_.end(), ids.begin(), ids.end());
  }

 private:
  struct Entry {
    std::uint32_t first;  // index into ids_
    std::uint32_t count;
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const {
      return std::hash<std::string_view>{}(text);
    }
  };

  void clear() {
    entries_.clear();
    ids_.clear();
  }

  std::uint64_t owner_ = 0;
  std::unordered_map<std::string, Entry, Hash, std::equal_to<>> entries_;
  std::vector<std::int32_t> ids_;
};

[[noreturn]] void throw_invalid_utf8(std::string_view text, std::size_t offset) {
  char byte[8];
  std::snprintf(byte, sizeof byte, "0x%02x", static_cast<unsigned char>(text[offset]));
  throw Error("invalid UTF-8 at byte " + std::to_string(offset) + " (" + byte +
              "); use --lossy to replace invalid bytes with U+FFFD");
}

// Encodes valid UTF-8 `text`; offsets are byte positions in `text`.
class Encoder {
 public:
  Encoder(const Tokenizer::Impl& impl, std::string_view text, Encoding& out)
      : impl_(impl), text_(text), out_(out), cache_(WordCache::for_thread(impl)) {
    // About 4 bytes per token in English: reserving avoids most regrowth on big inputs.
    out_.ids.reserve(text.size() / 4 + 8);
    out_.offsets.reserve(text.size() / 4 + 8);
  }

  // Splits around special tokens first (like Hugging Face and tiktoken), so "<|endoftext|>"
  // never reaches the regex, and each stretch between them is pre-tokenized on its own.
  void encode_with_special_tokens() {
    const auto& special = impl_.special_tokens;
    // Next occurrence of each special token at or after `pos` (npos: none left), refreshed
    // lazily so that the text is scanned once per special token, not once per occurrence.
    std::vector<std::size_t> next(special.size());
    for (std::size_t k = 0; k < special.size(); ++k) next[k] = text_.find(special[k].content);
    std::size_t pos = 0;
    while (true) {
      std::size_t best = std::string_view::npos;
      std::size_t best_index = 0;
      for (std::size_t k = 0; k < special.size(); ++k) {
        if (next[k] < pos) {
          next[k] = text_.find(special[k].content, pos);
        }
        // Leftmost, then longest, like Hugging Face's added-token matcher.
        if (next[k] < best ||
            (next[k] == best && special[k].content.size() > special[best_index].content.size())) {
          best = next[k];
          best_index = k;
        }
      }
      if (best == std::string_view::npos) {
        encode_ordinary(pos, text_.size());
        return;
      }
      encode_ordinary(pos, best);
      const std::size_t end = best + special[best_index].content.size();
      out_.ids.push_back(special[best_index].id);
      out_.offsets.emplace_back(best, end);
      pos = end;
    }
  }

  void encode_ordinary(std::size_t begin, std::size_t end) {
    if (begin >= end) return;
    impl_.pre_tokenizer.split(text_.substr(begin, end - begin),
                              [&](std::size_t piece_begin, std::size_t piece_end) {
                                encode_piece(begin + piece_begin, begin + piece_end);
                              });
  }

 private:
  void encode_piece(std::size_t begin, std::size_t end) {
    const std::string_view piece = text_.substr(begin, end - begin);
    auto& ids = out_.ids;
    const std::size_t first = ids.size();
    if (piece.size() == 1) {
      ids.push_back(impl_.byte_token[static_cast<unsigned char>(piece[0])]);
    } else if (piece.size() > WordCache::kMaxPieceBytes) {
      impl_.bpe(piece, ids);
    } else if (!cache_.append(piece, ids)) {
      impl_.bpe(piece, ids);
      cache_.store(piece, std::span(ids).subspan(first));
    }
    // Every token of a piece is a run of its bytes, in order, so the spans follow from the
    // token lengths.
    std::size_t pos = begin;
    for (std::size_t i = first; i < ids.size(); ++i) {
      const std::size_t length = impl_.token_length[std::size_t(ids[i])];
      out_.offsets.emplace_back(pos, pos + length);
      pos += length;
    }
  }

  const Tokenizer::Impl& impl_;
  std::string_view text_;
  Encoding& out_;
  WordCache& cache_;
};

}  // namespace

Encoding Tokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  Encoding result;
  std::optional<detail::LossyText> lossy;
  std::string_view valid_text = text;
  if (const std::size_t invalid = detail::find_invalid_utf8(text); invalid != text.npos) {
    if (!options.lossy) throw_invalid_utf8(text, invalid);
    lossy = detail::replace_invalid_utf8(text, invalid);
    valid_text = lossy->text;
    result.replaced_bytes = lossy->replaced_bytes;
  }

  Encoder encoder(*impl_, valid_text, result);
  if (options.allow_special && !impl_->special_tokens.empty()) {
    encoder.encode_with_special_tokens();
  } else {
    encoder.encode_ordinary(0, valid_text.size());
  }

  if (lossy) {
    for (auto& [begin, end] : result.offsets) {
      begin = lossy->original_position(begin);
      end = lossy->original_position(end);
    }
  }
  return result;
}

std::string Tokenizer::decode(std::span<const std::int32_t> ids) const {
  std::size_t size = 0;
  for (const std::int32_t id : ids) {
    impl_->check_id(id);
    size += impl_->token_length[std::size_t(id)];
  }
  std::string text;
  text.reserve(size);
  for (const std::int32_t id : ids) text += impl_->token_bytes[std::size_t(id)];
  return text;
}

std::string_view Tokenizer::token_string(std::int32_t id) const {
  impl_->check_id(id);
  return impl_->token_strings[std::size_t(id)];
}

std::string Tokenizer::token_bytes(std::int32_t id) const {
  impl_->check_id(id);
  return impl_->token_bytes[std::size_t(id)];
}

std::string Tokenizer::display(std::int32_t id) const {
  impl_->check_id(id);
  return detail::display_bytes(impl_->token_bytes[std::size_t(id)]);
}

std::size_t Tokenizer::vocab_size() const { return impl_->token_strings.size(); }

std::int32_t Tokenizer::special_token_id(std::string_view content) const {
  for (const SpecialToken& token : impl_->special_tokens) {
    if (token.content == content) return token.id;
  }
  return -1;
}

}  // namespace tokmap::tokenizer
