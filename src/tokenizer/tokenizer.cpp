// Encoding and decoding.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>

#include "tokenizer/tokenizer_impl.hpp"

namespace tokmap::tokenizer {
namespace {

// Real text repeats its words constantly, so each thread remembers the BPE result of the pieces
// it has seen. Per thread rather than shared: no locking on the hot path, and encode() stays
// safe to call concurrently. An open-addressing table with keys and ids in two arenas: one
// probe, usually one cache line, no allocation per entry. Bounded: when full it starts over.
class WordCache {
 public:
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

  static std::uint64_t hash(std::string_view piece) {
    const auto load64 = [](const char* p) {
      std::uint64_t word;
      std::memcpy(&word, p, 8);
      return word;
    };
    const auto load32 = [](const char* p) {
      std::uint32_t word;
      std::memcpy(&word, p, 4);
      return std::uint64_t{word};
    };
    const char* data = piece.data();
    const std::size_t size = piece.size();
    std::uint64_t h = 0x9E3779B97F4A7C15ull ^ size;
    // Whole-word loads only, overlapping at the end: a byte-wise copy of the tail into a word
    // would stall on store-to-load forwarding, and this runs once per piece.
    std::uint64_t tail;
    if (size >= 8) {
      for (std::size_t i = 0; i + 8 < size; i += 8) {
        h = (h ^ load64(data + i)) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
      }
      tail = load64(data + size - 8);
    } else if (size >= 4) {
      tail = (load32(data) << 32) | load32(data + size - 4);
    } else {
      tail = size == 0 ? 0
                       : (std::uint64_t(std::uint8_t(data[0])) << 16) |
                             (std::uint64_t(std::uint8_t(data[size / 2])) << 8) |
                             std::uint8_t(data[size - 1]);
    }
    h = (h ^ tail) * 0xC4CEB9FE1A85EC53ull;
    return h ^ (h >> 29);
  }

  // Appends the cached ids of `piece` to `ids`; false if not cached.
  bool append(std::string_view piece, std::uint64_t hash, std::vector<std::int32_t>& ids) const {
    if (slots_.empty()) return false;
    for (std::size_t i = hash & kMask;; i = (i + 1) & kMask) {
      const Slot& slot = slots_[i];
      if (slot.key_length == 0) return false;
      if (slot.hash == hash && slot.key_length == piece.size() &&
          std::memcmp(keys_.data() + slot.key_offset, piece.data(), piece.size()) == 0) {
        const auto first = ids_.begin() + slot.ids_offset;
        ids.insert(ids.end(), first, first + slot.id_count);
        return true;
      }
    }
  }

  void store(std::string_view piece, std::uint64_t hash, std::span<const std::int32_t> ids) {
    if (piece.empty() || piece.size() > kMaxPieceBytes) return;
    if (slots_.empty()) slots_.assign(kSlots, Slot{});
    if (size_ >= kMaxEntries) clear();
    std::size_t i = hash & kMask;
    while (slots_[i].key_length != 0) i = (i + 1) & kMask;
    slots_[i] = {hash, std::uint32_t(keys_.size()), std::uint32_t(ids_.size()),
                 std::uint16_t(piece.size()), std::uint16_t(ids.size())};
    keys_.append(piece);
    ids_.insert(ids_.end(), ids.begin(), ids.end());
    ++size_;
  }

 private:
  static constexpr std::size_t kSlots = std::size_t{1} << 17;
  static constexpr std::size_t kMask = kSlots - 1;
  static constexpr std::size_t kMaxEntries = kSlots / 2;  // keeps probe sequences short

  struct Slot {
    std::uint64_t hash = 0;
    std::uint32_t key_offset = 0;  // into keys_
    std::uint32_t ids_offset = 0;  // into ids_
    std::uint16_t key_length = 0;  // 0: empty slot
    std::uint16_t id_count = 0;
  };

  void clear() {
    if (size_ == 0) return;
    std::fill(slots_.begin(), slots_.end(), Slot{});
    keys_.clear();
    ids_.clear();
    size_ = 0;
  }

  std::uint64_t owner_ = 0;
  std::vector<Slot> slots_;  // allocated on first store
  std::string keys_;
  std::vector<std::int32_t> ids_;
  std::size_t size_ = 0;
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
    } else if (const std::uint64_t hash = WordCache::hash(piece);
               !cache_.append(piece, hash, ids)) {
      impl_.bpe(piece, ids);
      cache_.store(piece, hash, std::span(ids).subspan(first));
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
