// Pre-tokenizers that cut text: where they cut (split_events) and which pieces a split behavior
// keeps (apply_behavior), transcribed from Hugging Face's NormalizedString::split.
#include "tokenizer/tokenizer_impl.hpp"

namespace tokmap::tokenizer::detail {
namespace {

template <typename Predicate>
void character_events(std::string_view text, Predicate&& is_match, std::vector<Event>& events) {
  std::size_t last = 0;
  for (std::size_t pos = 0; pos < text.size();) {
    std::size_t length = 1;
    const char32_t c = decode_utf8(text, pos, length);
    if (is_match(c)) {
      if (last < pos) events.push_back({last, pos, false});
      events.push_back({pos, pos + length, true});
      last = pos + length;
    }
    pos += length;
  }
  if (last < text.size()) events.push_back({last, text.size(), false});
}

void regex_events(const Regex& regex, std::string_view text, std::vector<Event>& events) {
  std::size_t previous = 0;
  regex.for_each_match(text, [&](std::size_t begin, std::size_t end) {
    if (previous != begin) events.push_back({previous, begin, false});
    events.push_back({begin, end, true});
    previous = end;
  });
  if (previous != text.size()) events.push_back({previous, text.size(), false});
}

}  // namespace

void split_events(const PreTokenizer& step, std::string_view text, std::vector<Event>& events) {
  events.clear();
  if (text.empty()) return;
  switch (step.kind) {
    case PreTokenizerKind::kSplit:
    case PreTokenizerKind::kWhitespace:
    case PreTokenizerKind::kByteLevel:
      regex_events(*step.pattern, text, events);
      return;
    case PreTokenizerKind::kWhitespaceSplit:
      character_events(text, is_white_space, events);
      return;
    case PreTokenizerKind::kPunctuation:
      character_events(text, is_punctuation, events);
      return;
    case PreTokenizerKind::kDigits:
      character_events(text, is_numeric, events);
      return;
    case PreTokenizerKind::kCharDelimiter:
    case PreTokenizerKind::kMetaspace: {
      std::size_t length = 1;
      const char32_t delimiter = decode_utf8(step.replacement, 0, length);
      character_events(
          text, [&](char32_t c) { return c == delimiter; }, events);
      return;
    }
    case PreTokenizerKind::kBert:
      return;  // two passes; done by the caller
  }
}

void apply_behavior(std::vector<Event>& events, SplitBehavior behavior, bool invert,
                    std::vector<Span>& ranges) {
  ranges.clear();
  if (invert) {
    for (Event& event : events) event.match = !event.match;
  }
  const auto push = [&](std::size_t begin, std::size_t end) { ranges.push_back({begin, end}); };
  switch (behavior) {
    case SplitBehavior::kRemoved:
      for (const Event& event : events) {
        if (!event.match) push(event.begin, event.end);
      }
      break;
    case SplitBehavior::kIsolated:
      for (const Event& event : events) push(event.begin, event.end);
      break;
    case SplitBehavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const Event& event : events) {
        if (event.match && !previous_match && !ranges.empty()) {
          ranges.back().end = event.end;
        } else {
          push(event.begin, event.end);
        }
        previous_match = event.match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool previous_match = false;
      for (std::size_t i = events.size(); i-- > 0;) {
        const Event& event = events[i];
        if (event.match && !previous_match && !ranges.empty()) {
          ranges.back().begin = event.begin;
        } else {
          push(event.begin, event.end);
        }
        previous_match = event.match;
      }
      std::reverse(ranges.begin(), ranges.end());
      break;
    }
    case SplitBehavior::kContiguous: {
      bool previous_match = false;
      for (const Event& event : events) {
        if (event.match == previous_match && !ranges.empty()) {
          ranges.back().end = event.end;
        } else {
          push(event.begin, event.end);
        }
        previous_match = event.match;
      }
      break;
    }
  }
  std::erase_if(ranges, [](const Span& range) { return range.begin == range.end; });
}

}  // namespace tokmap::tokenizer::detail
