#include "cli/viz.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <numeric>
#include <optional>
#include <thread>
#include <tuple>

#include "analysis/analysis.hpp"
#include "cli/cli.hpp"
#include "io/io.hpp"
#include "model/model.hpp"
#include "neighbors/neighbors.hpp"
#include "render/render.hpp"
#include "report/report.hpp"
#include "tokenizer/tokenizer.hpp"
#include "tsne/tsne.hpp"

namespace tokmap::cli {

namespace {

namespace fs = std::filesystem;

// One model's hidden states of the kept tokens.
struct ModelStates {
  std::string name;
  int n_layer = 0;
  std::size_t width = 0;
  std::vector<int> layers;                 // hidden-state indices, ascending
  std::vector<std::vector<float>> hidden;  // per layer: (N, width), normalised
};

neighbors::Metric parse_metric(const std::string& name) {
  if (name == "cosine") return neighbors::Metric::cosine;
  if (name == "euclidean") return neighbors::Metric::euclidean;
  throw Error("--metric must be cosine or euclidean, not '" + name + "'", ErrorKind::usage);
}

void normalize_rows(std::vector<float>& x, std::size_t n, std::size_t d, const std::string& how) {
  if (how == "none") return;
  if (how != "center" && how != "spherize") {
    throw Error("--normalize must be none, center or spherize, not '" + how + "'",
                ErrorKind::usage);
  }
  std::vector<double> mean(d, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t c = 0; c < d; ++c) mean[c] += x[i * d + c];
  }
  for (auto& m : mean) m /= double(n);
  for (std::size_t i = 0; i < n; ++i) {
    double norm = 0;
    for (std::size_t c = 0; c < d; ++c) {
      x[i * d + c] = static_cast<float>(x[i * d + c] - mean[c]);
      norm += double(x[i * d + c]) * x[i * d + c];
    }
    if (how == "spherize" && norm > 0) {
      const float scale = static_cast<float>(1.0 / std::sqrt(norm));
      for (std::size_t c = 0; c < d; ++c) x[i * d + c] *= scale;
    }
  }
}

std::string lowercase_trimmed(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string short_text(const std::string& text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  std::size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80)
    --cut;  // UTF-8 boundary
  return text.substr(0, cut) + "…";
}

std::string format(const char* pattern, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, pattern, value);
  return buffer;
}

// The report is built in a temporary sibling folder and moved into place at the end, so a
// failed or interrupted run never leaves a half-written report.
class StagingFolder {
 public:
  explicit StagingFolder(fs::path target) : target_(std::move(target)) {
    const fs::path parent = target_.has_parent_path() ? target_.parent_path() : fs::path(".");
    std::error_code ec;
    if (!fs::is_directory(parent, ec)) {
      throw Error(target_.string() + ": cannot write: folder " + parent.string() +
                  " does not exist");
    }
    if (fs::exists(target_, ec) && !fs::is_directory(target_, ec)) {
      throw Error(target_.string() + ": exists and is not a folder");
    }
    const std::string prefix = "." + target_.filename().string() + ".tmp-";
    remove_stale(target_, parent, prefix);
    std::string pattern = (parent / (prefix + "XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw Error(target_.string() +
                  ": cannot create a folder next to it: " + std::strerror(errno));
    }
    staging_ = pattern;
    io::register_pending_folder(staging_);
    // The lock says "a live run owns this folder"; the kernel drops it when the process dies,
    // even by SIGKILL, which no signal handler sees.
    lock_fd_ = ::open(staging_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (lock_fd_ >= 0) ::flock(lock_fd_, LOCK_EX | LOCK_NB);
  }
  ~StagingFolder() {
    if (!committed_) {
      std::error_code ec;
      fs::remove_all(staging_, ec);
    }
    io::unregister_pending_folder(staging_);
    if (lock_fd_ >= 0) ::close(lock_fd_);
  }

  // Staging folders of this target that no live run holds (left by a killed run) are removed.
  // A ".old" copy (the previous report, moved aside just before the new one moves in) goes back
  // into place when the run died in between, and is removed when the new report made it.
  static void remove_stale(const fs::path& target, const fs::path& parent,
                           const std::string& prefix) {
    std::error_code ec;
    std::vector<fs::path> candidates;
    for (fs::directory_iterator it(parent, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      std::error_code type_ec;
      if (name.starts_with(prefix) && name.size() >= prefix.size() + 6 &&
          it->is_directory(type_ec) && !it->is_symlink(type_ec)) {
        candidates.push_back(it->path());
      }
    }
    for (const auto& path : candidates) {
      const std::string name = path.filename().string();
      const bool old_copy = name.ends_with(".old");
      const fs::path owner = old_copy ? parent / name.substr(0, name.size() - 4) : path;
      const int fd = ::open(owner.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      const bool stale = fd < 0 ? old_copy : ::flock(fd, LOCK_EX | LOCK_NB) == 0;
      if (fd >= 0) ::close(fd);
      if (!stale) continue;
      std::error_code remove_ec;
      if (old_copy && !fs::exists(target, remove_ec)) {
        fs::rename(path, target, remove_ec);
        if (!remove_ec) continue;
      }
      fs::remove_all(path, remove_ec);
    }
  }

  const fs::path& path() const { return staging_; }
  void commit() {
    std::error_code ec;
    fs::path old;
    if (fs::exists(target_, ec)) {
      old = staging_.string() + ".old";
      fs::rename(target_, old, ec);
      if (ec)
        throw Error(target_.string() + ": cannot replace the existing folder: " + ec.message());
    }
    // mkdtemp made the folder private; a report is meant to be shared like any output.
    fs::permissions(staging_,
                    fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                        fs::perms::others_read | fs::perms::others_exec,
                    ec);
    fs::rename(staging_, target_, ec);
    if (ec) throw Error(target_.string() + ": cannot move the report into place: " + ec.message());
    committed_ = true;
    if (!old.empty()) fs::remove_all(old, ec);
  }

 private:
  fs::path target_;
  fs::path staging_;
  int lock_fd_ = -1;
  bool committed_ = false;
};

// Runs job(0..count-1) on up to `threads` threads (the calling thread is one of them) and calls
// `tick` on the calling thread after each of its jobs. The first exception is rethrown.
void run_parallel(std::size_t count, int threads, const std::function<void(std::size_t)>& job,
                  const std::function<void()>& tick = {}) {
  std::atomic<std::size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  auto work = [&](bool main_thread) {
    for (std::size_t i; (i = next++) < count;) {
      try {
        job(i);
      } catch (...) {
        std::lock_guard lock(failure_mutex);
        if (!failure) failure = std::current_exception();
        next = count;  // stop handing out work
      }
      if (main_thread && tick) tick();
    }
  };
  {
    std::vector<std::jthread> workers;
    const std::size_t extra =
        std::min<std::size_t>(count, std::max(1, threads)) - (count > 0 ? 1 : 0);
    for (std::size_t w = 0; w < extra; ++w) workers.emplace_back([&] { work(false); });
    work(true);
  }
  if (failure) std::rethrow_exception(failure);
}

// "layer 3, perplexity 4.8, 3D" (with the model when several, the seed when several).
std::string map_name(const report::ReportData& data, const report::Map& map, std::size_t seed) {
  std::string name = (data.models.size() > 1 ? data.models[map.model] + " " : "") + "layer " +
                     std::to_string(map.layer) + ", perplexity " + format("%g", map.perplexity) +
                     ", " + std::to_string(map.dims) + "D";
  if (data.seeds.size() > 1 && seed < data.seeds.size()) {
    name += ", seed " + std::to_string(data.seeds[seed]);
  }
  return name;
}

// The summary's verdict: the worst map with its rating and reasons (all maps when they are all
// good).
std::string map_verdict(const report::ReportData& data) {
  std::size_t seed = 0;
  const report::Map* worst = report::worst_map(data, &seed);
  if (worst == nullptr) return "no map assessed";
  const auto& a = seed == 0 ? *worst->assessment : worst->seed_assessments[seed - 1];
  std::size_t total = 0;
  for (const auto& m : data.maps) total += 1 + m.seed_assessments.size();
  std::string verdict;
  if (a.rating == analysis::Rating::good) {
    verdict =
        "all " + std::to_string(total) + " maps rated good; worst: " + map_name(data, *worst, seed);
  } else {
    verdict = "worst map: " + map_name(data, *worst, seed) + ", " + analysis::rating_name(a.rating);
  }
  std::string reasons;
  for (const auto& r : a.reasons) reasons += (reasons.empty() ? "" : "; ") + r;
  if (a.kl_rating == analysis::Rating::good) {  // otherwise a reason says it
    reasons += std::string(reasons.empty() ? "" : "; ") + "KL " +
               format("%.0f%%", 100.0 * a.kl_ratio) + " of an all-in-one-place map's (good)";
  }
  return verdict + (reasons.empty() ? "" : ": " + reasons);
}

// A warning naming the degenerate maps; empty when there are none.
std::string degenerate_maps(const report::ReportData& data) {
  std::vector<std::string> names;
  std::size_t total = 0;
  for (const auto& m : data.maps) {
    for (std::size_t s = 0; s <= m.seed_assessments.size(); ++s) {
      const analysis::MapAssessment* a =
          s == 0 ? (m.assessment ? &*m.assessment : nullptr) : &m.seed_assessments[s - 1];
      if (a == nullptr) continue;
      ++total;
      if (a->rating != analysis::Rating::degenerate) continue;
      names.push_back(map_name(data, m, s) +
                      (a->flags.empty() ? "" : " (" + a->flags.front() + ")"));
    }
  }
  if (names.empty()) return "";
  std::string out = std::to_string(names.size()) + " of " + std::to_string(total) +
                    " maps are degenerate and show nothing of the data: ";
  for (std::size_t i = 0; i < names.size() && i < 6; ++i) out += (i ? "; " : "") + names[i];
  if (names.size() > 6) out += "; and " + std::to_string(names.size() - 6) + " more";
  return out + " (the report flags them)";
}

// The command that makes this report again: the input and every flag that decides the maps,
// quoted for a POSIX shell (`tokmap viz --from-report` reads it back). Only --out is left off,
// so the same input gives the same bytes wherever the report is written: add --out DIR.
std::string command_line(const VizOptions& options, const std::vector<std::string>& models,
                         const std::vector<double>& perplexities) {
  std::vector<std::string> words{"tokmap", "viz"};
  for (const auto& model : models) words.insert(words.end(), {"--model", model});
  if (!options.input.file.empty()) {
    words.insert(words.end(), {"--file", options.input.file});
    if (options.input.whole_file) words.push_back("--whole-file");
  } else {
    for (const auto& text : options.input.texts) words.insert(words.end(), {"--text", text});
  }
  if (options.input.lossy) words.push_back("--lossy");
  for (const auto& word : options.highlight) words.insert(words.end(), {"--highlight", word});
  std::string dims, perplexity;
  for (const int d : options.dims) dims += (dims.empty() ? "" : ",") + std::to_string(d);
  for (const double p : perplexities)
    perplexity += (perplexity.empty() ? "" : ",") + format("%g", p);
  words.insert(words.end(),
               {"--layers", options.layers, "--dims", dims, "--perplexity", perplexity, "--seed",
                std::to_string(options.seed), "--seeds", std::to_string(options.seeds), "--metric",
                options.metric, "--normalize", options.normalize,
                options.exclude_first ? "--exclude-first" : "--include-first", "--iterations",
                std::to_string(options.iterations)});
  if (!options.figures) words.push_back("--no-figures");
  std::string line;
  for (const auto& word : words) line += (line.empty() ? "" : " ") + shell_quote(word);
  return line;
}

std::string lowercase(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Which kept tokens --highlight marks. A word matches where it stands alone in a text
// (case-insensitive, not inside a longer word); the tokens covering it are marked, so a word the
// tokenizer splits (" unease" = " une" + "ase") is marked as its run of sub-tokens, which is
// said once, as is a word that matches nothing.
std::vector<std::uint8_t> highlight_tokens(const std::vector<std::string>& words,
                                           const std::vector<TextSource>& texts,
                                           const std::vector<EncodedText>& encoded,
                                           const std::vector<std::vector<std::int64_t>>& row_of,
                                           const std::vector<report::Token>& tokens,
                                           const CommonOptions& common) {
  std::vector<std::uint8_t> emphasis(tokens.size(), 0);
  const auto is_word_byte = [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return std::isalnum(u) || u >= 0x80;
  };
  for (const auto& given : words) {
    const std::string word = lowercase(lowercase_trimmed(given));
    if (word.empty()) continue;
    std::size_t whole = 0, split = 0;
    std::string example;  // the sub-tokens of the first split match
    for (std::size_t t = 0; t < texts.size(); ++t) {
      const std::string text = lowercase(texts[t].text);
      const auto& offsets = encoded[t].encoding.offsets;
      for (std::size_t at = text.find(word); at != std::string::npos;
           at = text.find(word, at + 1)) {
        const std::size_t end = at + word.size();
        if ((at > 0 && is_word_byte(text[at - 1]) && is_word_byte(word.front())) ||
            (end < text.size() && is_word_byte(text[end]) && is_word_byte(word.back()))) {
          continue;  // inside a longer word
        }
        // Token spans tile the text in order: the first that ends after `at`, then on.
        std::vector<std::size_t> covering;
        auto p = static_cast<std::size_t>(
            std::partition_point(offsets.begin(), offsets.end(),
                                 [&](const auto& span) { return span.second <= at; }) -
            offsets.begin());
        for (; p < offsets.size() && offsets[p].first < end; ++p) {
          if (offsets[p].second > at) covering.push_back(p);
        }
        bool kept = false;
        for (const auto p : covering) {
          if (row_of[t][p] >= 0) {
            emphasis[static_cast<std::size_t>(row_of[t][p])] = 1;
            kept = true;
          }
        }
        if (!kept) continue;  // only an excluded first token
        if (covering.size() == 1) {
          ++whole;
        } else {
          ++split;
          if (example.empty()) {
            for (std::size_t k = 0; k < covering.size(); ++k) {
              const auto row = row_of[t][covering[k]];
              const std::string shown =
                  row >= 0 ? tokens[static_cast<std::size_t>(row)].display
                           : std::string(texts[t].text.substr(
                                 offsets[covering[k]].first,
                                 offsets[covering[k]].second - offsets[covering[k]].first));
              example += (k ? " + '" : "'") + shown + "'";
            }
          }
        }
      }
    }
    if (whole == 0 && split == 0) {
      warn(common, "--highlight '" + given + "' matches no token in the texts");
    } else if (whole == 0) {
      info(common, "--highlight '" + given + "' is not one token: it matches only as sub-tokens (" +
                       example + "), " + std::to_string(split) +
                       " time(s); those runs are highlighted");
    }
  }
  return emphasis;
}

}  // namespace

double default_perplexity(std::size_t n_points) {
  return std::clamp(std::round(double(n_points - 1) / 4.0 * 10.0) / 10.0, 2.0, 30.0);
}

void run_viz(const VizOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const neighbors::Metric metric = parse_metric(options.metric);
  for (const int d : options.dims) {
    if (d != 2 && d != 3) throw Error("--dims takes 2, 3 or 2,3", ErrorKind::usage);
  }
  if (options.seeds < 1) throw Error("--seeds must be at least 1", ErrorKind::usage);
  for (const double p : options.perplexities) {
    if (!(p > 0)) throw Error("--perplexity values must be positive", ErrorKind::usage);
  }
  if (options.out.empty()) throw Error("--out is required", ErrorKind::usage);
  StagingFolder staging(options.out);  // fails early when the destination is not writable

  const auto texts = read_texts(options.input, options.common);
  const std::vector<std::string> model_specs =
      options.models.empty() ? std::vector<std::string>{""} : options.models;

  // --- Tokens and hidden states ---------------------------------------------------------------
  std::vector<EncodedText> encoded;
  std::vector<ModelStates> states;
  std::vector<std::size_t> kept_text, kept_position;  // per kept row
  std::vector<std::vector<std::int64_t>> row_of;      // [text][position] -> kept row or -1
  std::optional<tokenizer::Tokenizer> first_tokenizer;
  for (std::size_t m = 0; m < model_specs.size(); ++m) {
    const auto location = model::resolve_model(model_specs[m], resolve_options());
    auto tokenizer = load_tokenizer(location.folder, texts);
    const model::Model model = model::Model::load(location.folder);
    auto this_encoding =
        encode_texts(tokenizer ? &*tokenizer : nullptr, texts, options.input.lossy, options.common);
    if (m == 0) {
      encoded = std::move(this_encoding);
      first_tokenizer = tokenizer;
      row_of.resize(encoded.size());
      for (std::size_t t = 0; t < encoded.size(); ++t) {
        row_of[t].assign(encoded[t].encoding.ids.size(), -1);
        for (std::size_t p = 0; p < encoded[t].encoding.ids.size(); ++p) {
          if (options.exclude_first && p == 0) continue;
          row_of[t][p] = static_cast<std::int64_t>(kept_text.size());
          kept_text.push_back(t);
          kept_position.push_back(p);
        }
      }
      if (kept_text.size() < 4) {
        throw Error(
            "viz needs at least 4 tokens to map, got " + std::to_string(kept_text.size()) +
            (options.exclude_first ? " (first tokens excluded; --include-first keeps them)" : ""));
      }
    } else {
      for (std::size_t t = 0; t < encoded.size(); ++t) {
        if (this_encoding[t].encoding.ids != encoded[t].encoding.ids) {
          throw Error("models '" + states[0].name + "' and '" + location.name + "' tokenize " +
                      texts[t].origin + " differently; comparing models needs the same tokenizer");
        }
      }
    }
    ModelStates s;
    s.name = location.name;
    s.n_layer = model.config().n_layer;
    s.width = model.config().n_embd;
    s.layers = model::parse_layers(options.layers, s.n_layer);
    const std::size_t n = kept_text.size();
    s.hidden.assign(s.layers.size(), std::vector<float>(n * s.width));
    std::vector<std::vector<std::int32_t>> ids;
    for (const auto& e : encoded) ids.push_back(e.encoding.ids);
    model::ForwardOptions forward_options;
    forward_options.layers = s.layers;
    forward_options.threads = options.threads;
    model::forward(model, ids, forward_options, [&](const model::HiddenStates& h) {
      for (std::size_t i = 0; i < h.token_count; ++i) {
        const auto row = row_of[h.text_index][h.first_token + i];
        if (row < 0) continue;
        for (std::size_t l = 0; l < h.layers.size(); ++l) {
          std::copy_n(h.layers[l].data() + i * h.width, h.width,
                      s.hidden[l].data() + row * h.width);
        }
      }
    });
    for (auto& layer : s.hidden) normalize_rows(layer, n, s.width, options.normalize);
    states.push_back(std::move(s));
  }
  const std::size_t n = kept_text.size();

  // --- Report data: tokens ----------------------------------------------------------------------
  report::ReportData data;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& encoding = encoded[kept_text[i]].encoding;
    const std::size_t p = kept_position[i];
    const auto id = encoding.ids[p];
    report::Token token;
    token.text = static_cast<int>(kept_text[i]);
    token.position = static_cast<int>(p);
    token.id = id;
    const tokenizer::Tokenizer* tok = first_tokenizer ? &*first_tokenizer : nullptr;
    token.display = display_token(tok, id);
    token.offset = encoding.offsets[p];
    // A token of incomplete UTF-8 bytes is labelled with the character its neighbours complete.
    if (token.display.find("<0x") != std::string::npos) {
      token.label = tokenizer::whole_characters(texts[kept_text[i]].text, token.offset.first,
                                                token.offset.second);
    }
    token.kind = tok != nullptr && id < static_cast<std::int32_t>(tok->vocab_size())
                     ? report::token_kind(tok->token_bytes(id), token.position,
                                          id == tok->special_token_id("<|endoftext|>"))
                     : report::token_kind(token.display, token.position, false);
    data.tokens.push_back(std::move(token));
  }
  const std::vector<std::uint8_t> emphasis =
      highlight_tokens(options.highlight, texts, encoded, row_of, data.tokens, options.common);
  for (std::size_t i = 0; i < n; ++i) {
    if (emphasis[i]) data.settings.highlight_tokens.push_back(static_cast<std::int32_t>(i));
  }
  for (const auto& t : texts) data.texts.push_back(t.text);
  for (const auto& s : states) data.models.push_back(s.name);
  {
    std::vector<int> all_layers;
    for (const auto& s : states)
      all_layers.insert(all_layers.end(), s.layers.begin(), s.layers.end());
    std::sort(all_layers.begin(), all_layers.end());
    all_layers.erase(std::unique(all_layers.begin(), all_layers.end()), all_layers.end());
    data.layers = all_layers;
  }
  std::vector<double> perplexities = options.perplexities;
  if (perplexities.empty()) {
    perplexities.push_back(default_perplexity(n));
    info(options.common, "perplexity " + format("%g", perplexities[0]) + " for " +
                             std::to_string(n) + " tokens (set --perplexity to change)");
  }
  data.perplexities = perplexities;
  for (int s = 0; s < options.seeds; ++s)
    data.seeds.push_back(options.seed + static_cast<std::uint64_t>(s));
  data.dims = options.dims;
  data.settings.metric = options.metric;
  data.settings.normalize = options.normalize;
  data.settings.exclude_first = options.exclude_first;
  data.settings.highlight = options.highlight;
  data.title = "tokmap — " + data.models[0] +
               (data.models.size() > 1 ? " vs " + data.models[1] : "") + ", " +
               std::to_string(texts.size()) + " text(s), " + std::to_string(n) + " tokens";
  data.created_with = command_line(options, data.models, perplexities);

  // --- Analyses of the original space -----------------------------------------------------------
  for (std::size_t m = 0; m < states.size(); ++m) {
    const auto& s = states[m];
    for (std::size_t l = 0; l < s.layers.size(); ++l) {
      const analysis::Matrix x{s.hidden[l], n, s.width};
      report::Analysis a;
      a.model = static_cast<int>(m);
      a.layer = s.layers[l];
      neighbors::KnnOptions knn_options;
      knn_options.k = std::min<std::size_t>(5, n - 1);
      knn_options.metric = metric;
      knn_options.algorithm = neighbors::Algorithm::exact;
      const auto knn = neighbors::knn(x.data, n, s.width, knn_options);
      a.neighbor_count = knn.k;
      a.neighbors = knn.indices;
      a.neighbor_distances = knn.distances;
      analysis::ClusterOptions cluster_options;
      cluster_options.metric = metric;
      cluster_options.seed = options.seed;
      a.cluster = analysis::clusters(x, cluster_options).labels;
      analysis::OutlierOptions outlier_options;
      outlier_options.metric = metric;
      a.outlier = analysis::outlier_scores(x, outlier_options);
      std::vector<std::int32_t> order(n);
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [&](auto i, auto j) { return a.outlier[i] > a.outlier[j]; });
      for (std::size_t i = 0; i < std::min<std::size_t>(10, n); ++i) {
        if (a.outlier[order[i]] < 3.0f && i >= 3) break;
        a.top_outliers.push_back(order[i]);
      }
      data.analysis.push_back(std::move(a));
    }
  }

  // --- Maps ----------------------------------------------------------------------------------
  // A chain is one (model, perplexity, dims): its layers run in order, each map starting from
  // the previous layer's. Chains are independent, so small inputs run several chains at once,
  // each t-SNE on one thread (at a few hundred points, threads inside one t-SNE mostly wait);
  // large inputs run one chain at a time with every thread. The output does not depend on it.
  struct Chain {
    std::size_t model = 0;
    double perplexity = 0;
    int dims = 2;
    std::vector<report::Map> maps;  // one per layer of the model
    std::vector<std::string> warnings;
  };
  std::vector<Chain> chains;
  for (std::size_t m = 0; m < states.size(); ++m) {
    for (const double perplexity : perplexities) {
      for (const int dims : options.dims) chains.push_back({m, perplexity, dims, {}, {}});
    }
  }
  const int cores = options.threads > 0
                        ? options.threads
                        : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const bool small = n < 2000;
  // Small inputs: each t-SNE gets the cores the unfinished chains leave free, so the last chain
  // (3D, the longest) is not left on one core while the others idle. t-SNE's result does not
  // depend on its thread count, so neither does the output.
  std::atomic<std::size_t> chains_unfinished{chains.size()};
  const auto tsne_threads = [&] {
    if (!small) return cores;
    const auto running = std::min<std::size_t>(chains_unfinished.load(),
                                               static_cast<std::size_t>(cores));
    return std::max(1, cores / static_cast<int>(std::max<std::size_t>(running, 1)));
  };

  std::atomic<std::size_t> runs_done{0};
  std::size_t runs_total = 0;
  for (const auto& chain : chains)
    runs_total += states[chain.model].layers.size() * static_cast<std::size_t>(options.seeds);

  auto run_chain = [&](Chain& chain) {
    const auto& s = states[chain.model];
    const int dims = chain.dims;
    for (std::size_t l = 0; l < s.layers.size(); ++l) {
      const analysis::Matrix x{s.hidden[l], n, s.width};
      report::Map map;
      map.model = static_cast<int>(chain.model);
      map.layer = s.layers[l];
      map.perplexity = chain.perplexity;
      map.dims = dims;
      std::vector<std::vector<float>> seed_maps;
      for (int k = 0; k < options.seeds; ++k) {
        tsne::TsneOptions t;
        t.dims = dims;
        t.perplexity = chain.perplexity;
        t.seed = options.seed + static_cast<std::uint64_t>(k);
        t.iterations = options.iterations;
        t.metric = metric;
        t.threads = tsne_threads();
        if (k == 0 && !chain.maps.empty()) {
          // Start from the previous layer's map so consecutive layers line up.
          t.init = tsne::Init::given;
          t.initial_embedding = chain.maps.back().coords;
        } else if (k > 0) {
          t.init = tsne::Init::random;  // PCA init would make every seed identical
        }
        auto result = tsne::run_tsne(x.data, n, s.width, t);
        for (auto& w : result.warnings) {
          if (std::find(chain.warnings.begin(), chain.warnings.end(), w) == chain.warnings.end()) {
            chain.warnings.push_back(std::move(w));
          }
        }
        if (k == 0) {
          map.kl = result.kl;
          map.kl_uniform = result.kl_uniform;
        } else {
          map.seed_kl.push_back(result.kl);
        }
        seed_maps.push_back(std::move(result.embedding));
        ++runs_done;
      }
      // Align to the previous layer (rotation/reflection/scale) so the slider moves points
      // only as much as the layers differ.
      map.coords = seed_maps[0];
      if (!chain.maps.empty()) {
        analysis::procrustes_align(map.coords, {chain.maps.back().coords, n, std::size_t(dims)},
                                   {seed_maps[0], n, std::size_t(dims)});
      }
      analysis::QualityOptions quality_options;
      quality_options.metric = metric;
      const auto quality =
          analysis::map_quality(x, {map.coords, n, std::size_t(dims)}, quality_options);
      map.trustworthiness = quality.trustworthiness;
      map.continuity = quality.continuity;
      map.knn_preservation = quality.knn_preservation;
      map.k = quality.k;
      // Assessed as t-SNE left them (before alignment rescales them): the point test is in
      // t-SNE's units. Other seeds get the geometry and KL checks (no per-seed neighbour ranks).
      analysis::MapFacts facts;
      facts.kl = map.kl;
      facts.kl_uniform = map.kl_uniform;
      facts.trustworthiness = quality.trustworthiness;
      facts.continuity = quality.continuity;
      facts.knn_preservation = quality.knn_preservation;
      facts.k = quality.k;
      map.assessment = analysis::assess_map({seed_maps[0], n, std::size_t(dims)}, facts, x);
      for (std::size_t k = 1; k < seed_maps.size(); ++k) {
        analysis::MapFacts seed_facts;
        seed_facts.kl = map.seed_kl[k - 1];
        seed_facts.kl_uniform = map.kl_uniform;
        seed_facts.k = quality.k;
        map.seed_assessments.push_back(
            analysis::assess_map({seed_maps[k], n, std::size_t(dims)}, seed_facts, x));
      }
      if (options.seeds > 1) {
        std::vector<analysis::Matrix> maps;
        maps.push_back({map.coords, n, std::size_t(dims)});
        for (std::size_t k = 1; k < seed_maps.size(); ++k)
          maps.push_back({seed_maps[k], n, std::size_t(dims)});
        auto stable = analysis::stability(maps);
        map.stability = stable.overall;
        map.point_stability = stable.per_point;
        for (std::size_t k = 1; k < stable.aligned.size(); ++k)
          map.seed_coords.push_back(std::move(stable.aligned[k]));
      }
      chain.maps.push_back(std::move(map));
    }
    --chains_unfinished;
  };
  {
    Progress progress(options.common, "t-SNE", runs_total);
    // Small maps run one chain per core, each single-threaded: BLAS (PCA, k-NN) must not start
    // its own threads on top (they oversubscribe the cores and spin: the GPT-2-small-shaped case
    // of bench/viz took 2.0 s without figures with them, 1.0 s without).
    std::optional<neighbors::ScopedBlasThreads> blas;
    if (small && cores > 1 && chains.size() > 1) blas.emplace(1);
    // 3D chains first: they take longest, so they must not be the ones started last.
    std::vector<std::size_t> order(chains.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return chains[a].dims > chains[b].dims; });
    run_parallel(
        chains.size(), small ? cores : 1, [&](std::size_t i) { run_chain(chains[order[i]]); },
        [&] { progress.update(runs_done.load()); });
  }
  std::vector<std::string> warnings_seen;
  for (auto& chain : chains) {
    for (const auto& w : chain.warnings) {
      if (std::find(warnings_seen.begin(), warnings_seen.end(), w) == warnings_seen.end()) {
        warn(options.common, w);
        warnings_seen.push_back(w);
      }
    }
    for (auto& map : chain.maps) data.maps.push_back(std::move(map));
  }

  // --- Comparison across models: the same tokens' neighbourhoods at matching depth -------------
  for (std::size_t m = 1; m < states.size(); ++m) {
    for (std::size_t l = 0; l < states[0].layers.size(); ++l) {
      const int layer_a = states[0].layers[l];
      // Matching relative depth: layer 6 of 6 pairs with layer 4 of 4.
      const int wanted =
          static_cast<int>(std::lround(double(layer_a) * states[m].n_layer / states[0].n_layer));
      const auto it = std::find(states[m].layers.begin(), states[m].layers.end(), wanted);
      if (it == states[m].layers.end()) continue;
      const std::size_t lb = static_cast<std::size_t>(it - states[m].layers.begin());
      report::ComparisonPair pair;
      pair.a = 0;
      pair.b = static_cast<int>(m);
      pair.layer_a = layer_a;
      pair.layer_b = wanted;
      pair.k = 10;
      pair.overlap = analysis::neighborhood_overlap({states[0].hidden[l], n, states[0].width},
                                                    {states[m].hidden[lb], n, states[m].width},
                                                    pair.k, metric);
      pair.mean = std::accumulate(pair.overlap.begin(), pair.overlap.end(), 0.0) / double(n);
      data.comparison.push_back(std::move(pair));
    }
  }

  // --- Outputs -----------------------------------------------------------------------------------
  const fs::path dir = staging.path();
  report::write_html(dir / "index.html", data);
  report::write_points_tsv(dir / "points.tsv", data);
  report::write_maps_tsv(dir / "maps.tsv", data);
  std::vector<report::ProjectorTensor> projector;
  for (std::size_t m = 0; m < states.size(); ++m) {
    for (std::size_t l = states[m].layers.size(); l-- > 0;) {
      projector.push_back(
          {static_cast<int>(m), states[m].layers[l], states[m].width, &states[m].hidden[l]});
    }
  }
  report::write_projector(dir, data, projector);

  if (options.figures) {
    fs::create_directory(dir / "figures");
    std::vector<render::Rgba> colors(n);
    for (std::size_t i = 0; i < n; ++i) colors[i] = render::categorical_color(data.tokens[i].text);
    std::vector<render::LegendEntry> legend;
    for (std::size_t t = 0; t < texts.size() && t < 12; ++t) {
      legend.push_back({render::categorical_color(t),
                        "text " + std::to_string(t + 1) + ": " + short_text(texts[t].text, 48)});
    }
    std::vector<std::string> labels(n);
    for (std::size_t i = 0; i < n; ++i) {
      labels[i] = data.tokens[i].label.empty() ? data.tokens[i].display : data.tokens[i].label;
    }
    // Label priority per (model, layer): outliers first (highlighted tokens always lead).
    std::map<std::pair<int, int>, std::vector<std::uint32_t>> label_orders;
    for (const auto& a : data.analysis) {
      auto& order = label_orders[{a.model, a.layer}];
      for (const auto i : a.top_outliers) order.push_back(static_cast<std::uint32_t>(i));
      for (std::size_t i = 0; i < n; ++i) {
        if (std::find(order.begin(), order.end(), i) == order.end())
          order.push_back(static_cast<std::uint32_t>(i));
      }
    }
    auto label_order = [&](const report::Map& map) -> const std::vector<std::uint32_t>& {
      return label_orders.at({map.model, map.layer});
    };
    auto points_of = [&](const report::Map& map) {
      render::Points points;
      points.dims = map.dims;
      points.coords = map.coords;
      points.colors = colors;
      points.labels = labels;
      points.emphasis = emphasis;
      points.label_order = label_order(map);
      return points;
    };
    // Figures are independent files: render them in parallel.
    std::vector<std::function<void()>> jobs;
    auto caption = [&](const report::Map& map) {
      return data.models[map.model] + " · layer " + std::to_string(map.layer) + " · perplexity " +
             format("%g", map.perplexity) + " · seed " + std::to_string(options.seed) + " · KL " +
             format("%.3f", map.kl) + " · trustworthiness " + format("%.3f", map.trustworthiness) +
             " · " + options.metric + ", " + options.normalize +
             (options.exclude_first ? ", first tokens excluded" : "");
    };
    const std::vector<std::string> formats{".png", ".svg", ".pdf"};
    // Small multiples, three panels a row, fewer labels per panel.
    auto add_grid = [&](const std::vector<render::Panel>& panels, const std::string& caption,
                        const std::string& stem) {
      render::FigureOptions grid;
      grid.width = 720;
      grid.height = 200.0 * std::ceil(panels.size() / 3.0) + 90;
      grid.legend = legend;
      grid.caption = caption;
      grid.style.max_labels = 25;
      for (const auto& ext : formats) {
        const fs::path out = dir / "figures" / (stem + ext);
        jobs.push_back([=] { render::render_grid(out, panels, grid); });
      }
    };
    for (std::size_t m = 0; m < states.size(); ++m) {
      const std::string model_name = report::file_stem(data.models[m]);
      for (const double perplexity : perplexities) {
        const std::string ptag = "perplexity" + format("%g", perplexity);
        std::vector<render::Panel> layer_panels;
        for (const auto& map : data.maps) {
          if (map.model != int(m) || map.perplexity != perplexity) continue;
          const render::Points points = points_of(map);
          render::FigureOptions figure;
          figure.legend = legend;
          figure.caption = caption(map);
          const std::string base = model_name + "-layer" + std::to_string(map.layer) + "-" + ptag;
          if (map.dims == 2) {
            for (const auto& ext : formats) {
              jobs.push_back([=, &dir] {
                render::render_scatter(dir / "figures" / (base + ext), points, figure);
              });
            }
            render::Panel panel;
            panel.title = "layer " + std::to_string(map.layer);
            panel.points = points;
            layer_panels.push_back(panel);
          } else if (map.layer == states[m].layers.back()) {
            for (const auto& ext : formats) {
              jobs.push_back([=, &dir] {
                render::render_views(dir / "figures" / (base + "-3d" + ext), points, {}, figure);
              });
            }
          }
        }
        if (layer_panels.size() > 1) {
          add_grid(layer_panels,
                   data.models[m] + " · all layers · perplexity " + format("%g", perplexity) +
                       " · maps of consecutive layers initialised from each other and aligned",
                   model_name + "-layers-" + ptag);
        }
      }
      if (perplexities.size() > 1 &&
          std::find(options.dims.begin(), options.dims.end(), 2) != options.dims.end()) {
        std::vector<render::Panel> panels;
        const int last = states[m].layers.back();
        for (const auto& map : data.maps) {
          if (map.model != int(m) || map.layer != last || map.dims != 2) continue;
          render::Panel panel;
          panel.title =
              "perplexity " + format("%g", map.perplexity) + " · KL " + format("%.2f", map.kl);
          panel.points = points_of(map);
          panels.push_back(panel);
        }
        add_grid(panels,
                 data.models[m] + " · layer " + std::to_string(last) + " across perplexities",
                 model_name + "-layer" + std::to_string(last) + "-perplexities");
      }
    }
    run_parallel(jobs.size(), cores, [&](std::size_t i) { jobs[i](); });
  }
  staging.commit();

  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::string summary = "wrote " + options.out + "/index.html: " + std::to_string(n) + " tokens, " +
                        std::to_string(data.maps.size()) + " maps in " + format("%.2f", seconds) +
                        " s";
  for (const auto& map : data.maps) {
    if (map.model == 0 && map.dims == 2 && map.layer == data.layers.back() &&
        map.perplexity == perplexities[0]) {
      summary += "; layer " + std::to_string(map.layer) + ": KL " + format("%.3f", map.kl) +
                 ", trustworthiness " + format("%.3f", map.trustworthiness);
    }
  }
  summary += "; " + map_verdict(data);
  info(options.common, summary);
  if (const std::string degenerate = degenerate_maps(data); !degenerate.empty()) {
    warn(options.common, degenerate);
  }
}

}  // namespace tokmap::cli
