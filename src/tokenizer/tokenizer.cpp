// Encoding and decoding.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <deque>
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

  // Cuts added tokens out of the text first (like Hugging Face), so "<|endoftext|>" never
  // reaches the normalizer or the regexes, and each stretch between them is encoded on its own.
  void encode(bool allow_special) {
    std::vector<detail::AddedMatcher::Match> matches;
    impl_.added_raw.find(text_, allow_special, matches);
    std::size_t pos = 0;
    for (const auto& match : matches) {
      encode_stretch(pos, match.begin, allow_special);
      out_.ids.push_back(impl_.added[match.token].id);
      out_.offsets.emplace_back(match.begin, match.end);
      pos = match.end;
    }
    encode_stretch(pos, text_.size(), allow_special);
  }

 private:
  void encode_stretch(std::size_t begin, std::size_t end, bool allow_special) {
    if (begin >= end) return;
    buffers_.clear();
    detail::Aligned& stretch = buffers_.emplace_back();
    stretch.text = text_.substr(begin, end - begin);
    stretch.origin = begin;
    for (const detail::Normalizer& normalizer : impl_.normalizers) {
      stretch = normalizer.apply(std::move(stretch));
    }
    if (impl_.added_normalized.empty()) {
      stream(0, 0, 0, stretch.text.size());
      return;
    }
    std::vector<detail::AddedMatcher::Match> matches;
    impl_.added_normalized.find(stretch.text, allow_special, matches);
    std::size_t pos = 0;
    for (const auto& match : matches) {
      stream(0, 0, pos, match.begin);
      const detail::Span span = buffers_[0].original(match.begin, match.end);
      out_.ids.push_back(impl_.added[match.token].id);
      out_.offsets.emplace_back(span.begin, span.end);
      pos = match.end;
    }
    stream(0, 0, pos, buffers_[0].text.size());
  }

  // Pre-tokenizer `k` on [begin, end) of buffer b, each resulting piece handed on to the next
  // pre-tokenizer, and to the model after the last.
  void stream(std::size_t k, std::size_t b, std::size_t begin, std::size_t end) {
    if (begin >= end) return;
    if (k == impl_.pre_tokenizers.size()) {
      model_piece(b, begin, end);
      return;
    }
    using K = detail::PreTokenizerKind;
    const detail::PreTokenizer& step = impl_.pre_tokenizers[k];
    const std::string_view text = buffers_[b].text.substr(begin, end - begin);
    const auto next = [&](std::size_t buffer, std::size_t offset) {
      return [this, k, buffer, offset](std::size_t s, std::size_t e) {
        stream(k + 1, buffer, offset + s, offset + e);
      };
    };
    switch (step.kind) {
      case K::kByteLevel: {
        std::size_t buffer = b;
        std::size_t offset = begin;
        std::string_view piece = text;
        if (step.add_prefix_space && piece.front() != ' ') {
          detail::AlignedBuilder builder;
          builder.append(" ", buffers_[b].original_at(begin));
          builder.copy(buffers_[b], begin, end);
          buffers_.push_back(builder.finish());
          buffer = buffers_.size() - 1;
          offset = 0;
          piece = buffers_[buffer].text;
        }
        if (step.pattern) {
          step.pattern->split(piece, next(buffer, offset));
        } else {
          stream(k + 1, buffer, offset, offset + piece.size());
        }
        return;
      }
      case K::kSplit:
        if (step.behavior == detail::SplitBehavior::kIsolated && !step.invert) {
          step.pattern->split(text, next(b, begin));  // the common case, without copies
          return;
        }
        break;
      case K::kMetaspace: {
        detail::AlignedBuilder builder;
        const detail::Aligned& source = buffers_[b];
        const bool starts_with_replacement = text.starts_with(step.replacement);
        using P = detail::PreTokenizer::Prepend;
        if (!starts_with_replacement &&
            (step.prepend == P::kAlways ||
             (step.prepend == P::kFirst && source.original_at(begin).begin == 0))) {
          // A space in front: unless the text already starts with one (which becomes the
          // replacement below).
          if (!text.starts_with(' ')) builder.append(step.replacement, source.original_at(begin));
        }
        for (std::size_t i = begin; i < end; ++i) {
          if (source.text[i] == ' ') {
            builder.append(step.replacement, source.original(i, i + 1));
          } else {
            builder.copy(source, i, i + 1);
          }
        }
        buffers_.push_back(builder.finish());
        const std::size_t buffer = buffers_.size() - 1;
        const std::string_view replaced = buffers_[buffer].text;
        if (!step.split) {
          stream(k + 1, buffer, 0, replaced.size());
          return;
        }
        std::vector<detail::Event> events;
        std::vector<detail::Span> ranges;
        detail::split_events(step, replaced, events);
        detail::apply_behavior(events, detail::SplitBehavior::kMergedWithNext, false, ranges);
        for (const detail::Span& range : ranges) stream(k + 1, buffer, range.begin, range.end);
        return;
      }
      case K::kBert: {
        std::vector<detail::Event> events;
        std::vector<detail::Span> words, pieces;
        detail::PreTokenizer pass{};
        pass.kind = K::kWhitespaceSplit;
        detail::split_events(pass, text, events);
        detail::apply_behavior(events, detail::SplitBehavior::kRemoved, false, words);
        pass.kind = K::kPunctuation;
        for (const detail::Span& word : words) {
          detail::split_events(pass, text.substr(word.begin, word.end - word.begin), events);
          detail::apply_behavior(events, detail::SplitBehavior::kIsolated, false, pieces);
          for (const detail::Span& piece : pieces) {
            stream(k + 1, b, begin + word.begin + piece.begin, begin + word.begin + piece.end);
          }
        }
        return;
      }
      default:
        break;
    }
    std::vector<detail::Event> events;
    std::vector<detail::Span> ranges;
    detail::split_events(step, text, events);
    detail::apply_behavior(events, step.behavior, step.invert, ranges);
    for (const detail::Span& range : ranges)
      stream(k + 1, b, begin + range.begin, begin + range.end);
  }

  void model_piece(std::size_t b, std::size_t begin, std::size_t end) {
    const detail::Aligned& buffer = buffers_[b];
    const std::string_view piece = buffer.text.substr(begin, end - begin);
    auto& ids = out_.ids;
    const std::size_t first = ids.size();
    if (!impl_.byte_level) {
      lengths_.clear();
      impl_.char_model(piece, ids, lengths_);
      std::size_t pos = begin;
      for (std::size_t i = 0; i < lengths_.size(); ++i) {
        const detail::Span span = buffer.original(pos, pos + lengths_[i]);
        out_.offsets.emplace_back(span.begin, span.end);
        pos += lengths_[i];
      }
      return;
    }
    if (piece.size() == 1) {
      ids.push_back(impl_.byte_token[static_cast<unsigned char>(piece[0])]);
    } else if (piece.size() > WordCache::kMaxPieceBytes) {
      bpe(piece);
    } else if (const std::uint64_t hash = WordCache::hash(piece);
               !cache_.append(piece, hash, ids)) {
      bpe(piece);
      cache_.store(piece, hash, std::span(ids).subspan(first));
    }
    // Every token of a piece is a run of its bytes, in order, so the spans follow from the
    // token lengths.
    std::size_t pos = begin;
    if (buffer.align.empty()) {
      const std::size_t origin = buffer.origin;
      for (std::size_t i = first; i < ids.size(); ++i) {
        const std::size_t length = impl_.token_length[std::size_t(ids[i])];
        out_.offsets.emplace_back(origin + pos, origin + pos + length);
        pos += length;
      }
      return;
    }
    for (std::size_t i = first; i < ids.size(); ++i) {
      const std::size_t length = impl_.token_length[std::size_t(ids[i])];
      const detail::Span span = buffer.original(pos, pos + length);
      out_.offsets.emplace_back(span.begin, span.end);
      pos += length;
    }
  }

  void bpe(std::string_view piece) {
    if (impl_.ignore_merges) {
      if (const auto it = impl_.bytes_vocab.find(piece); it != impl_.bytes_vocab.end()) {
        out_.ids.push_back(it->second);
        return;
      }
    }
    impl_.bpe(piece, out_.ids);
  }

  const Tokenizer::Impl& impl_;
  std::string_view text_;
  Encoding& out_;
  WordCache& cache_;
  std::deque<detail::Aligned> buffers_;
  std::vector<std::uint32_t> lengths_;
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
  encoder.encode(options.allow_special);

  if (options.add_special_tokens && (!impl_->prefix_ids.empty() || !impl_->suffix_ids.empty())) {
    const std::size_t n = impl_->prefix_ids.size();
    result.ids.insert(result.ids.begin(), impl_->prefix_ids.begin(), impl_->prefix_ids.end());
    result.offsets.insert(result.offsets.begin(), n, {0, 0});
    for (const std::int32_t id : impl_->suffix_ids) {
      result.ids.push_back(id);
      result.offsets.emplace_back(valid_text.size(), valid_text.size());
    }
  }

  if (lossy) {
    for (auto& [begin, end] : result.offsets) {
      begin = lossy->original_position(begin);
      end = lossy->original_position(end);
    }
  }
  return result;
}

namespace {

// Hugging Face's decoders on the token strings (Decoder::decode_chain, then joined).
std::vector<std::string> run_decoder(const Tokenizer::Impl& impl, std::vector<std::string> tokens) {
  const auto replace_all = [](const std::string& text, const std::string& from,
                              const std::string& to) {
    if (from.empty()) return text;
    std::string out;
    for (std::size_t pos = 0;;) {
      const std::size_t hit = text.find(from, pos);
      out.append(text, pos, hit == text.npos ? text.npos : hit - pos);
      if (hit == text.npos) break;
      out += to;
      pos = hit + from.size();
    }
    return out;
  };
  for (const DecoderStep& step : impl.decoders) {
    switch (step.kind) {
      case DecoderKind::kByteLevel: {
        std::string bytes;
        std::string token_bytes;
        for (const std::string& token : tokens) {
          if (detail::symbols_to_bytes(token, token_bytes)) {
            bytes += token_bytes;
          } else {
            bytes += token;
          }
        }
        tokens.assign(1, std::move(bytes));
        break;
      }
      case DecoderKind::kReplace:
        for (std::string& token : tokens) token = replace_all(token, step.pattern, step.content);
        break;
      case DecoderKind::kByteFallback: {
        std::vector<std::string> out;
        std::string pending;
        const auto flush = [&] {
          if (pending.empty()) return;
          if (detail::find_invalid_utf8(pending) == std::string::npos) {
            out.push_back(pending);
          } else {
            for (std::size_t i = 0; i < pending.size(); ++i) out.emplace_back("\xEF\xBF\xBD");
          }
          pending.clear();
        };
        for (std::string& token : tokens) {
          if (token.size() == 6 && token.starts_with("<0x") && token.back() == '>' &&
              std::isxdigit(static_cast<unsigned char>(token[3])) &&
              std::isxdigit(static_cast<unsigned char>(token[4]))) {
            pending += char(std::stoi(token.substr(3, 2), nullptr, 16));
          } else {
            flush();
            out.push_back(std::move(token));
          }
        }
        flush();
        tokens = std::move(out);
        break;
      }
      case DecoderKind::kFuse: {
        std::string joined;
        for (const std::string& token : tokens) joined += token;
        tokens.assign(1, std::move(joined));
        break;
      }
      case DecoderKind::kStrip:
        for (std::string& token : tokens) {
          std::size_t start = 0;
          for (std::size_t i = 0;
               i < step.start && token.compare(start, step.content.size(), step.content) == 0;
               ++i) {
            start += step.content.size();
          }
          std::size_t end = token.size();
          for (std::size_t i = 0;
               i < step.stop && end >= start + step.content.size() &&
               token.compare(end - step.content.size(), step.content.size(), step.content) == 0;
               ++i) {
            end -= step.content.size();
          }
          token = token.substr(start, end - start);
        }
        break;
      case DecoderKind::kMetaspace:
        for (std::size_t i = 0; i < tokens.size(); ++i) {
          tokens[i] = replace_all(tokens[i], step.content, i == 0 && step.prepend ? "" : " ");
        }
        break;
      case DecoderKind::kWordPiece:
        for (std::size_t i = 0; i < tokens.size(); ++i) {
          std::string& token = tokens[i];
          if (i != 0) {
            if (token.starts_with(step.content)) {
              token.erase(0, step.content.size());
            } else {
              token.insert(0, " ");
            }
          }
          if (step.cleanup) {
            static const std::pair<const char*, const char*> kCleanup[] = {
                {" .", "."},   {" ?", "?"},     {" !", "!"},    {" ,", ","},
                {" ' ", "'"},  {" n't", "n't"}, {" 'm", "'m"},  {" do not", " don't"},
                {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
            for (const auto& [from, to] : kCleanup) token = replace_all(token, from, to);
          }
        }
        break;
      case DecoderKind::kBpe:
        for (std::size_t i = 0; i < tokens.size(); ++i) {
          tokens[i] = replace_all(tokens[i], step.content, i + 1 == tokens.size() ? "" : " ");
        }
        break;
    }
  }
  return tokens;
}

}  // namespace

std::string Tokenizer::decode(std::span<const std::int32_t> ids) const {
  for (const std::int32_t id : ids) impl_->check_id(id);
  if (impl_->byte_level && impl_->decoders.size() == 1 &&
      impl_->decoders[0].kind == DecoderKind::kByteLevel) {
    // The common case: the bytes of the tokens, in order.
    std::size_t size = 0;
    for (const std::int32_t id : ids) size += impl_->token_length[std::size_t(id)];
    std::string text;
    text.reserve(size);
    for (const std::int32_t id : ids) text += impl_->token_bytes[std::size_t(id)];
    return text;
  }
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (const std::int32_t id : ids) tokens.push_back(impl_->token_strings[std::size_t(id)]);
  if (!impl_->has_decoder) {
    std::string joined;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (i) joined += ' ';
      joined += tokens[i];
    }
    return joined;
  }
  std::string text;
  for (const std::string& token : run_decoder(*impl_, std::move(tokens))) text += token;
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

bool Tokenizer::is_added_token(std::int32_t id) const {
  impl_->check_id(id);
  return impl_->is_added[std::size_t(id)];
}

std::int32_t Tokenizer::special_token_id(std::string_view content) const {
  for (const SpecialToken& token : impl_->special_tokens) {
    if (token.content == content) return token.id;
  }
  return -1;
}

}  // namespace tokmap::tokenizer
