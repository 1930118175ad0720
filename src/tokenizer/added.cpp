// Added tokens: found in the text before anything else, leftmost first and the longest of those
// starting there, as Hugging Face's Aho-Corasick automaton (MatchKind::LeftmostLongest) does,
// then filtered by the single_word / lstrip / rstrip rules of its AddedVocabulary::find_matches.
#include <algorithm>

#include "tokenizer/tokenizer_impl.hpp"

namespace tokmap::tokenizer::detail {

void AddedMatcher::build(const std::vector<AddedToken>* tokens,
                         std::vector<std::size_t> token_index, std::vector<std::string> patterns) {
  tokens_ = tokens;
  token_index_ = std::move(token_index);
  patterns_ = std::move(patterns);
  first_byte_.fill(false);
  // Build a trie with child lists in a temporary map form, then flatten it.
  struct BuildNode {
    std::vector<std::pair<unsigned char, std::uint32_t>> children;
    std::size_t pattern = SIZE_MAX;
  };
  std::vector<BuildNode> build(1);
  for (std::size_t p = 0; p < patterns_.size(); ++p) {
    const std::string& pattern = patterns_[p];
    if (pattern.empty()) continue;
    first_byte_[static_cast<unsigned char>(pattern[0])] = true;
    std::uint32_t node = 0;
    for (const char ch : pattern) {
      const auto byte = static_cast<unsigned char>(ch);
      auto& children = build[node].children;
      const auto it = std::find_if(children.begin(), children.end(),
                                   [&](const auto& child) { return child.first == byte; });
      if (it != children.end()) {
        node = it->second;
      } else {
        const auto next = std::uint32_t(build.size());
        children.emplace_back(byte, next);
        build.emplace_back();
        node = next;
      }
    }
    // The same content twice: the later token wins, as a later insert into a map would.
    build[node].pattern = p;
  }
  nodes_.assign(build.size(), Node{});
  edges_.clear();
  for (std::size_t n = 0; n < build.size(); ++n) {
    auto& children = build[n].children;
    std::sort(children.begin(), children.end());
    nodes_[n].first_child = std::uint32_t(edges_.size());
    nodes_[n].child_count = std::uint16_t(children.size());
    nodes_[n].pattern = build[n].pattern;
    edges_.insert(edges_.end(), children.begin(), children.end());
  }
}

namespace {

std::size_t leading_space(std::string_view s) {
  std::size_t pos = 0;
  while (pos < s.size()) {
    std::size_t length = 1;
    if (!is_white_space(decode_utf8(s, pos, length))) break;
    pos += length;
  }
  return pos;
}

std::size_t trailing_space_start(std::string_view s) {
  std::size_t end = s.size();
  while (end > 0) {
    std::size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    std::size_t length = 1;
    if (!is_white_space(decode_utf8(s, start, length))) break;
    end = start;
  }
  return end;
}

char32_t last_char(std::string_view s) {
  std::size_t start = s.size() - 1;
  while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
  std::size_t length = 1;
  return decode_utf8(s, start, length);
}

}  // namespace

void AddedMatcher::find(std::string_view text, bool allow_special, std::vector<Match>& out) const {
  out.clear();
  if (patterns_.empty()) return;
  std::size_t start_offset = 0;  // end of the previous kept match
  std::size_t pos = 0;
  const std::size_t size = text.size();
  while (pos < size) {
    if (!first_byte_[static_cast<unsigned char>(text[pos])]) {
      ++pos;
      continue;
    }
    // The longest pattern starting at pos.
    std::uint32_t node = 0;
    std::size_t best = SIZE_MAX;
    std::size_t best_end = 0;
    for (std::size_t i = pos; i < size; ++i) {
      const Node& current = nodes_[node];
      const auto byte = static_cast<unsigned char>(text[i]);
      const auto first = edges_.begin() + current.first_child;
      const auto last = first + current.child_count;
      const auto it =
          std::lower_bound(first, last, std::pair<unsigned char, std::uint32_t>{byte, 0});
      if (it == last || it->first != byte) break;
      node = it->second;
      if (nodes_[node].pattern != SIZE_MAX) {
        best = nodes_[node].pattern;
        best_end = i + 1;
      }
    }
    if (best == SIZE_MAX) {
      ++pos;
      continue;
    }
    std::size_t begin = pos;
    std::size_t end = best_end;
    pos = best_end;  // the automaton moves past this match whether or not it is kept
    const AddedToken& token = (*tokens_)[token_index_[best]];
    if (!allow_special && token.special) continue;
    if (token.single_word) {
      const bool space_before = begin == 0 || !is_word_char(last_char(text.substr(0, begin)));
      std::size_t length = 1;
      const bool space_after = end == size || !is_word_char(decode_utf8(text, end, length));
      if (!space_before || !space_after) continue;
    }
    if (token.lstrip) begin = std::max(trailing_space_start(text.substr(0, begin)), start_offset);
    if (token.rstrip) {
      end += leading_space(text.substr(end));
      pos = std::max(pos, end);
    }
    out.push_back({begin, end, token_index_[best]});
    start_offset = end;
  }
}

}  // namespace tokmap::tokenizer::detail
