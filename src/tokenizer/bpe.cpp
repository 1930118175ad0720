// Byte-pair merging of one pre-tokenized piece.
//
// The rule (OpenAI's encoder.py, Hugging Face, tiktoken): repeatedly merge the adjacent pair with
// the lowest merge rank, the leftmost one on ties, until no adjacent pair has a rank.
// Short pieces (nearly all of them) use a direct scan over a small array, which is fastest when
// n is tiny; long pieces use a min-heap of candidate pairs over a linked list of symbols, so that
// a multi-megabyte "word" costs O(n log n) instead of the naive O(n^2).
#include <algorithm>
#include <bit>
#include <limits>
#include <queue>

#include "tokenizer/tokenizer_impl.hpp"

namespace tokmap::tokenizer {
namespace detail {

void MergeTable::reserve(std::size_t merges) {
  std::size_t capacity = 16;
  while (capacity < merges * 2) capacity *= 2;
  if (capacity <= slots_.size()) return;
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(capacity, Slot{kEmpty, {kNoRank, -1}});
  mask_ = capacity - 1;
  shift_ = 64 - std::countr_zero(capacity);
  size_ = 0;
  for (const Slot& slot : old) {
    if (slot.key != kEmpty) {
      insert(std::int32_t(slot.key >> 32), std::int32_t(slot.key & 0xFFFFFFFFu), slot.merge);
    }
  }
}

void MergeTable::grow() { reserve(std::max<std::size_t>(16, slots_.size())); }

void MergeTable::insert(std::int32_t left, std::int32_t right, Merge merge) {
  if ((size_ + 1) * 2 > slots_.size()) grow();
  const std::uint64_t key = pack(left, right);
  for (std::size_t i = slot_of(key);; i = (i + 1) & mask_) {
    Slot& slot = slots_[i];
    if (slot.key == key) {
      slot.merge = merge;
      return;
    }
    if (slot.key == kEmpty) {
      slot = {key, merge};
      ++size_;
      return;
    }
  }
}

}  // namespace detail

namespace {

// Below this many bytes the quadratic scan beats the heap (and almost every English word is
// shorter); above it the heap keeps long pieces O(n log n).
constexpr std::size_t kSmallPiece = 48;

void bpe_small(const Tokenizer::Impl& impl, std::string_view piece,
               std::vector<std::int32_t>& ids) {
  std::int32_t symbols[kSmallPiece];
  std::size_t count = piece.size();
  for (std::size_t i = 0; i < count; ++i) {
    symbols[i] = impl.byte_token[static_cast<unsigned char>(piece[i])];
  }
  // Rank of each adjacent pair (i, i+1), updated locally after every merge.
  std::uint32_t ranks[kSmallPiece];
  std::int32_t merged[kSmallPiece];
  for (std::size_t i = 0; i + 1 < count; ++i) {
    const auto merge = impl.merges.find(symbols[i], symbols[i + 1]);
    ranks[i] = merge.rank;
    merged[i] = merge.merged_id;
  }
  while (count > 1) {
    std::size_t best = 0;
    for (std::size_t i = 1; i + 1 < count; ++i) {
      if (ranks[i] < ranks[best]) best = i;
    }
    if (ranks[best] == detail::MergeTable::kNoRank) break;
    symbols[best] = merged[best];
    // Close the gap left by symbol best+1.
    for (std::size_t i = best + 1; i + 1 < count; ++i) {
      symbols[i] = symbols[i + 1];
      ranks[i] = ranks[i + 1];
      merged[i] = merged[i + 1];
    }
    --count;
    if (best > 0) {
      const auto merge = impl.merges.find(symbols[best - 1], symbols[best]);
      ranks[best - 1] = merge.rank;
      merged[best - 1] = merge.merged_id;
    }
    if (best + 1 < count) {
      const auto merge = impl.merges.find(symbols[best], symbols[best + 1]);
      ranks[best] = merge.rank;
      merged[best] = merge.merged_id;
    }
  }
  ids.insert(ids.end(), symbols, symbols + count);
}

// Index is the type of byte positions: 32 bits for any piece below 4 GiB (halves the memory
// traffic of the linked list), 64 bits beyond.
template <typename Index>
void bpe_large(const Tokenizer::Impl& impl, std::string_view piece,
               std::vector<std::int32_t>& ids) {
  const std::size_t n = piece.size();
  constexpr Index kNone = std::numeric_limits<Index>::max();
  constexpr std::int32_t kRemoved = -1;
  // Symbol i starts at byte i; merging keeps the left symbol and unlinks the right one.
  std::vector<std::int32_t> symbol(n);
  std::vector<Index> prev(n), next(n);
  for (std::size_t i = 0; i < n; ++i) {
    symbol[i] = impl.byte_token[static_cast<unsigned char>(piece[i])];
    prev[i] = i == 0 ? kNone : Index(i - 1);
    next[i] = i + 1 == n ? kNone : Index(i + 1);
  }

  // A candidate pair packed into one integer so that the min-heap compares (rank, position):
  // the lowest rank first, the leftmost on ties. Ranks are below 2^24 (checked when loading)
  // and positions below 2^40.
  constexpr int kPositionBits = 40;
  constexpr std::uint64_t kPositionMask = (std::uint64_t{1} << kPositionBits) - 1;
  const auto pack = [](std::uint32_t rank, std::uint64_t left) {
    return (std::uint64_t(rank) << kPositionBits) | left;
  };
  std::vector<std::uint64_t> initial;
  initial.reserve(n);
  for (std::size_t i = 0; i + 1 < n; ++i) {
    const auto merge = impl.merges.find(symbol[i], symbol[i + 1]);
    if (merge.rank != detail::MergeTable::kNoRank) initial.push_back(pack(merge.rank, i));
  }
  // Built in O(n) from the whole vector rather than by n pushes.
  std::priority_queue<std::uint64_t, std::vector<std::uint64_t>, std::greater<>> queue(
      std::greater<>{}, std::move(initial));
  const auto push_pair = [&](Index left) {
    if (left == kNone || next[left] == kNone) return;
    const auto merge = impl.merges.find(symbol[left], symbol[next[left]]);
    if (merge.rank != detail::MergeTable::kNoRank) queue.push(pack(merge.rank, left));
  };

  while (!queue.empty()) {
    const std::uint64_t candidate = queue.top();
    queue.pop();
    const auto left = Index(candidate & kPositionMask);
    const auto rank = std::uint32_t(candidate >> kPositionBits);
    if (symbol[left] == kRemoved || next[left] == kNone) continue;
    // Entries go stale when a neighbour merges. A rank names exactly one pair, so the entry
    // is still valid iff the pair now at `left` has the same rank.
    const Index right = next[left];
    const auto merge = impl.merges.find(symbol[left], symbol[right]);
    if (merge.rank != rank) continue;
    symbol[left] = merge.merged_id;
    symbol[right] = kRemoved;
    next[left] = next[right];
    if (next[right] != kNone) prev[next[right]] = left;
    push_pair(prev[left]);
    push_pair(left);
  }
  for (Index i = 0; i != kNone; i = next[i]) ids.push_back(symbol[i]);
}

}  // namespace

void Tokenizer::Impl::bpe(std::string_view piece, std::vector<std::int32_t>& ids) const {
  if (piece.empty()) return;
  if (piece.size() <= kSmallPiece) {
    bpe_small(*this, piece, ids);
  } else if (piece.size() < (std::size_t{1} << 32) - 1) {
    bpe_large<std::uint32_t>(*this, piece, ids);
  } else {
    bpe_large<std::uint64_t>(*this, piece, ids);
  }
}

}  // namespace tokmap::tokenizer

// ---------------------------------------------------------------------------------------------
// BPE over characters (SentencePiece-style vocabularies: "▁the", byte fallback "<0xE6>") and
// WordPiece, transcribed from Hugging Face's BPE::merge_word / Word::merge_all and
// WordPiece::tokenize.

namespace tokmap::tokenizer {
namespace {

// Merges `symbols` (with their byte lengths) in place: lowest rank first, leftmost on ties.
void merge_symbols(const detail::MergeTable& merges, std::vector<std::int32_t>& symbol,
                   std::vector<std::uint32_t>& length) {
  const std::size_t n = symbol.size();
  if (n < 2) return;
  constexpr std::uint32_t kNone = UINT32_MAX;
  std::vector<std::uint32_t> prev(n), next(n);
  for (std::size_t i = 0; i < n; ++i) {
    prev[i] = i == 0 ? kNone : std::uint32_t(i - 1);
    next[i] = i + 1 == n ? kNone : std::uint32_t(i + 1);
  }
  constexpr int kPositionBits = 40;
  constexpr std::uint64_t kPositionMask = (std::uint64_t{1} << kPositionBits) - 1;
  const auto pack = [](std::uint32_t rank, std::uint64_t left) {
    return (std::uint64_t(rank) << kPositionBits) | left;
  };
  std::vector<std::uint64_t> initial;
  initial.reserve(n);
  for (std::size_t i = 0; i + 1 < n; ++i) {
    const auto merge = merges.find(symbol[i], symbol[i + 1]);
    if (merge.rank != detail::MergeTable::kNoRank) initial.push_back(pack(merge.rank, i));
  }
  std::priority_queue<std::uint64_t, std::vector<std::uint64_t>, std::greater<>> queue(
      std::greater<>{}, std::move(initial));
  constexpr std::int32_t kRemoved = -1;
  const auto push_pair = [&](std::uint32_t left) {
    if (left == kNone || next[left] == kNone) return;
    const auto merge = merges.find(symbol[left], symbol[next[left]]);
    if (merge.rank != detail::MergeTable::kNoRank) queue.push(pack(merge.rank, left));
  };
  while (!queue.empty()) {
    const std::uint64_t candidate = queue.top();
    queue.pop();
    const auto left = std::uint32_t(candidate & kPositionMask);
    const auto rank = std::uint32_t(candidate >> kPositionBits);
    if (symbol[left] == kRemoved || next[left] == kNone) continue;
    const std::uint32_t right = next[left];
    const auto merge = merges.find(symbol[left], symbol[right]);
    if (merge.rank != rank) continue;
    symbol[left] = merge.merged_id;
    length[left] += length[right];
    symbol[right] = kRemoved;
    next[left] = next[right];
    if (next[right] != kNone) prev[next[right]] = left;
    push_pair(prev[left]);
    push_pair(left);
  }
  std::size_t out = 0;
  for (std::uint32_t i = 0; i != kNone; i = next[i]) {
    symbol[out] = symbol[i];
    length[out] = length[i];
    ++out;
  }
  symbol.resize(out);
  length.resize(out);
}

void bpe_characters(const Tokenizer::Impl& impl, std::string_view piece,
                    std::vector<std::int32_t>& ids, std::vector<std::uint32_t>& lengths) {
  if (impl.ignore_merges) {
    if (const auto it = impl.vocab.find(piece); it != impl.vocab.end()) {
      ids.push_back(it->second);
      lengths.push_back(std::uint32_t(piece.size()));
      return;
    }
  }
  thread_local std::vector<std::int32_t> symbol;
  thread_local std::vector<std::uint32_t> length;
  symbol.clear();
  length.clear();
  const bool affixes = !impl.continuing_subword_prefix.empty() || !impl.end_of_word_suffix.empty();
  std::string key;
  std::int32_t unk = -1;
  std::uint32_t unk_length = 0;
  for (std::size_t pos = 0; pos < piece.size();) {
    std::size_t char_length = 1;
    detail::decode_utf8(piece, pos, char_length);
    std::string_view s = piece.substr(pos, char_length);
    const bool first = pos == 0;
    const bool last = pos + char_length == piece.size();
    if (affixes) {
      key.clear();
      if (!first) key += impl.continuing_subword_prefix;
      key += s;
      if (last) key += impl.end_of_word_suffix;
      s = key;
    }
    pos += char_length;
    if (const auto it = impl.vocab.find(s); it != impl.vocab.end()) {
      if (unk >= 0) {
        symbol.push_back(unk);
        length.push_back(unk_length);
        unk = -1;
      }
      symbol.push_back(it->second);
      length.push_back(std::uint32_t(char_length));
      continue;
    }
    if (impl.byte_fallback) {
      bool all = true;
      for (const char byte : s)
        all = all && impl.fallback_token[static_cast<unsigned char>(byte)] >= 0;
      if (all) {
        // Hugging Face adds these before a pending unknown token (kept as it does).
        for (const char byte : s) {
          symbol.push_back(impl.fallback_token[static_cast<unsigned char>(byte)]);
          length.push_back(1);
        }
        continue;
      }
    }
    if (impl.unk_id >= 0) {
      if (unk >= 0 && impl.fuse_unk) {
        unk_length += std::uint32_t(char_length);
      } else {
        if (unk >= 0) {
          symbol.push_back(unk);
          length.push_back(unk_length);
        }
        unk = impl.unk_id;
        unk_length = std::uint32_t(char_length);
      }
    }
  }
  if (unk >= 0) {
    symbol.push_back(unk);
    length.push_back(unk_length);
  }
  merge_symbols(impl.merges, symbol, length);
  ids.insert(ids.end(), symbol.begin(), symbol.end());
  lengths.insert(lengths.end(), length.begin(), length.end());
}

void wordpiece(const Tokenizer::Impl& impl, std::string_view word, std::vector<std::int32_t>& ids,
               std::vector<std::uint32_t>& lengths) {
  std::size_t chars = 0;
  for (const char c : word) chars += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  const auto unknown = [&] {
    ids.push_back(impl.unk_id);
    lengths.push_back(std::uint32_t(word.size()));
  };
  if (chars > impl.max_input_chars_per_word) return unknown();
  const std::size_t first = ids.size();
  const std::size_t first_length = lengths.size();
  std::string key;
  std::size_t start = 0;
  while (start < word.size()) {
    std::size_t end = word.size();
    std::int32_t found = -1;
    while (start < end) {
      std::string_view sub = word.substr(start, end - start);
      if (start > 0) {
        key.assign(impl.continuing_subword_prefix);
        key += sub;
        sub = key;
      }
      if (const auto it = impl.vocab.find(sub); it != impl.vocab.end()) {
        found = it->second;
        break;
      }
      // Back off by one character.
      --end;
      while (end > start && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80) --end;
    }
    if (found < 0) {
      ids.resize(first);
      lengths.resize(first_length);
      return unknown();
    }
    ids.push_back(found);
    lengths.push_back(std::uint32_t(end - start));
    start = end;
  }
}

}  // namespace

void Tokenizer::Impl::char_model(std::string_view piece, std::vector<std::int32_t>& ids,
                                 std::vector<std::uint32_t>& lengths) const {
  if (piece.empty()) return;
  if (model == ModelKind::kWordPiece) {
    wordpiece(*this, piece, ids, lengths);
  } else {
    bpe_characters(*this, piece, ids, lengths);
  }
}

}  // namespace tokmap::tokenizer
