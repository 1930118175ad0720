// `tokmap atlas build|info|place`: reference maps of a corpus and placement into them. Flags and
// messages only; the work is in src/atlas.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "atlas/atlas.hpp"
#include "cli/inputs.hpp"
#include "io/io.hpp"

namespace tokmap::cli {

namespace {

struct AtlasBuildOptions {
  CommonOptions common;
  TextInputOptions input;
  std::string model;
  std::string layers = "all";
  std::vector<int> dims{2};
  double perplexity = 30.0;
  int rank = 50;
  std::string metric = "cosine";
  int iterations = 750;
  std::uint64_t seed = 0;
  std::size_t max_tokens = 50000;
  std::string provenance;
  std::string out;
  int threads = 0;
};

struct AtlasPlaceOptions {
  CommonOptions common;
  TextInputOptions input;
  std::string atlas;
  std::string model;  // default: the atlas's model
  std::string out;    // points.tsv
  int iterations = atlas::PlaceOptions{}.iterations;
  int threads = 0;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Hidden states of every token after each text's first, per layer: (rows, width).
struct Embedded {
  std::vector<std::vector<float>> states;
  std::vector<atlas::AtlasToken> tokens;
  std::size_t width = 0;
};

Embedded embed(const model::Model& model, const tokenizer::Tokenizer* tok,
               const std::vector<EncodedText>& encoded, const std::vector<int>& layers, int threads,
               std::size_t max_tokens, bool one_text_at_a_time = false) {
  Embedded e;
  e.width = static_cast<std::size_t>(model.config().n_embd);
  std::vector<std::vector<std::int32_t>> ids;
  std::vector<std::vector<std::int64_t>> row_of(encoded.size());
  for (std::size_t t = 0; t < encoded.size(); ++t) {
    const auto& enc = encoded[t].encoding;
    ids.push_back(enc.ids);
    row_of[t].assign(enc.ids.size(), -1);
    for (std::size_t p = 1; p < enc.ids.size() && e.tokens.size() < max_tokens; ++p) {
      row_of[t][p] = static_cast<std::int64_t>(e.tokens.size());
      e.tokens.push_back({enc.ids[p], display_token(tok, enc.ids[p]), static_cast<std::int32_t>(t),
                          static_cast<std::int32_t>(p),
                          static_cast<std::uint32_t>(enc.offsets[p].first),
                          static_cast<std::uint32_t>(enc.offsets[p].second)});
    }
  }
  const std::size_t n = e.tokens.size();
  e.states.assign(layers.size(), std::vector<float>(n * e.width));
  model::ForwardOptions fo;
  fo.layers = layers;
  fo.threads = threads;
  // The forward pass batches texts, and a text's states may then differ in the last bit with
  // the company it keeps; placement runs each text alone so that its tokens' positions do not.
  std::size_t text_base = 0;
  const auto keep = [&](const model::HiddenStates& h) {
    for (std::size_t i = 0; i < h.token_count; ++i) {
      const auto row = row_of[text_base + h.text_index][h.first_token + i];
      if (row < 0) continue;
      for (std::size_t l = 0; l < h.layers.size(); ++l)
        std::copy_n(h.layers[l].data() + i * h.width, h.width,
                    e.states[l].data() + std::size_t(row) * h.width);
    }
  };
  if (one_text_at_a_time) {
    for (text_base = 0; text_base < ids.size(); ++text_base)
      model::forward(model, std::span(ids).subspan(text_base, 1), fo, keep);
  } else {
    model::forward(model, ids, fo, keep);
  }
  return e;
}

void run_build(const AtlasBuildOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  if (o.out.empty()) throw Error("--out is required", ErrorKind::usage);
  const auto texts = read_texts(o.input, o.common);
  const auto location = model::resolve_model(o.model, resolve_options());
  const auto tokenizer = load_tokenizer(location.folder, texts);
  const tokenizer::Tokenizer* tok = tokenizer ? &*tokenizer : nullptr;
  const model::Model model = model::Model::load(location.folder);
  const auto layers = model::parse_layers(o.layers, model.config().n_layer);
  const auto encoded = encode_texts(tok, texts, o.input.lossy, o.common);
  auto e = embed(model, tok, encoded, layers, o.threads, o.max_tokens);
  info(o.common, "embedded " + std::to_string(e.tokens.size()) + " tokens in " +
                     std::to_string(seconds_since(start)) + " s; mapping " +
                     std::to_string(layers.size()) + " layer(s)");
  atlas::BuildOptions b;
  b.dims = o.dims;
  b.perplexity = o.perplexity;
  b.rank = o.rank;
  b.metric = o.metric;
  b.iterations = o.iterations;
  b.seed = o.seed;
  b.threads = o.threads;
  Progress progress(o.common, "atlas", layers.size());
  auto a = atlas::build(e.states, layers, e.tokens.size(), e.width, b,
                        [&](std::size_t done, std::size_t) { progress.update(done); });
  progress.finish();
  a.model = location.name;
  // Only the texts that gave tokens (--max-tokens may stop early).
  const std::size_t used = e.tokens.empty() ? 0 : std::size_t(e.tokens.back().text) + 1;
  for (std::size_t t = 0; t < used; ++t) a.texts.push_back(texts[t].text);
  a.tokens = std::move(e.tokens);
  a.provenance = o.provenance;
  atlas::write(o.out, a);
  char line[512];
  std::snprintf(line, sizeof line, "wrote %s: %zu tokens, %zu layer(s) of %s in %.1f s",
                o.out.c_str(), a.n, a.layers.size(), a.model.c_str(), seconds_since(start));
  info(o.common, line);
}

void run_info(const std::string& path) {
  const auto a = atlas::read(path);
  std::cout << "atlas " << path << " (format version " << atlas::kFormatVersion << ")\n"
            << "model: " << a.model << "\n"
            << "tokens: " << a.n << " from " << a.texts.size() << " text(s)\n"
            << "feature space: " << a.metric << ", rank " << a.rank << " of width " << a.width
            << "\nperplexity: " << a.perplexity << ", confidence k: " << a.confidence_k
            << ", seed: " << a.seed << "\n";
  if (!a.provenance.empty()) std::cout << "provenance: " << a.provenance << "\n";
  for (const auto& l : a.layers) {
    std::cout << "layer " << l.layer << ":";
    for (const auto& m : l.maps) {
      std::cout << "  " << m.dims << "D (KL " << m.kl << ", diameter "
                << atlas::map_diameter(m, a.n) << ", confidence " << m.calibration.front() << ".."
                << m.calibration.back() << ")";
    }
    std::cout << "\n";
  }
}

std::string tsv_field(std::string s) {
  for (auto& c : s)
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  return s;
}

void run_place(const AtlasPlaceOptions& o) {
  const auto a = atlas::read(o.atlas);
  const auto texts = read_texts(o.input, o.common);
  const auto location =
      model::resolve_model(o.model.empty() ? a.model : o.model, resolve_options());
  const auto tokenizer = load_tokenizer(location.folder, texts);
  const tokenizer::Tokenizer* tok = tokenizer ? &*tokenizer : nullptr;
  const model::Model model = model::Model::load(location.folder);
  if (static_cast<std::size_t>(model.config().n_embd) != a.width)
    throw Error("model " + location.name + " has width " + std::to_string(model.config().n_embd) +
                    " but the atlas " + o.atlas + " was built with width " +
                    std::to_string(a.width),
                ErrorKind::usage);
  std::vector<int> layers;
  for (const auto& l : a.layers) {
    if (l.layer > model.config().n_layer)
      throw Error("atlas layer " + std::to_string(l.layer) + " is beyond the model's layers",
                  ErrorKind::usage);
    layers.push_back(l.layer);
  }
  const auto start = std::chrono::steady_clock::now();  // the model is loaded
  const auto encoded = encode_texts(tok, texts, o.input.lossy, o.common);
  auto e = embed(model, tok, encoded, layers, o.threads, SIZE_MAX, true);
  const std::size_t m = e.tokens.size();
  atlas::PlaceOptions po;
  po.threads = o.threads;
  po.iterations = o.iterations;
  std::vector<std::vector<atlas::Placement>> placed;
  for (std::size_t l = 0; l < layers.size(); ++l)
    placed.push_back(atlas::place(a, l, e.states[l], m, po));
  const double seconds = seconds_since(start);

  std::ostringstream out;
  out << "source\ttext\tposition\ttoken\tid\tlayer\tdims\tx\ty\tz\tconfidence\n";
  for (std::size_t l = 0; l < layers.size(); ++l) {
    for (std::size_t k = 0; k < a.layers[l].maps.size(); ++k) {
      const auto& map = a.layers[l].maps[k];
      const int d = map.dims;
      for (std::size_t i = 0; i < a.n; ++i) {
        const auto& t = a.tokens[i];
        out << "atlas\t" << t.text + 1 << '\t' << t.position << '\t' << tsv_field(t.display) << '\t'
            << t.id << '\t' << a.layers[l].layer << '\t' << d;
        for (int c = 0; c < 3; ++c) out << '\t' << (c < d ? map.coords[i * d + c] : 0.0f);
        out << "\t1\n";
      }
      const auto& p = placed[l][k];
      for (std::size_t i = 0; i < m; ++i) {
        const auto& t = e.tokens[i];
        out << "placed\t" << t.text + 1 << '\t' << t.position << '\t' << tsv_field(t.display)
            << '\t' << t.id << '\t' << a.layers[l].layer << '\t' << d;
        for (int c = 0; c < 3; ++c) out << '\t' << (c < d ? p.coords[i * d + c] : 0.0f);
        out << '\t' << p.confidence[i] << '\n';
      }
    }
  }
  if (o.out.empty()) {
    std::cout << out.str();
  } else {
    io::write_file_atomically(o.out, out.str());
  }
  char line[256];
  std::snprintf(line, sizeof line,
                "placed %zu tokens into %zu layer(s) of %zu atlas tokens in %.3f s (after loading)",
                m, layers.size(), a.n, seconds);
  info(o.common, line);
}

struct AtlasCheckOptions {
  CommonOptions common;
  std::string atlas;
  std::string model;
  std::vector<int> texts;  // empty: every 10th text
  int iterations = atlas::PlaceOptions{}.iterations;
  int threads = 0;
};

// Re-places some of the atlas's own texts (re-embedded alone, as the build embedded them), each
// token leave-one-out (its own reference row excluded), and reports how far from the full map's
// position they land: the median displacement relative to the map's diameter.
void run_check(const AtlasCheckOptions& o) {
  const auto a = atlas::read(o.atlas);
  const auto location =
      model::resolve_model(o.model.empty() ? a.model : o.model, resolve_options());
  const model::Model model = model::Model::load(location.folder);
  std::vector<int> chosen = o.texts;
  if (chosen.empty())
    for (std::size_t t = 0; t < a.texts.size(); t += 10) chosen.push_back(static_cast<int>(t));
  std::vector<TextSource> sources;
  for (const int t : chosen) {
    if (t < 0 || std::size_t(t) >= a.texts.size())
      throw Error("--texts: the atlas has texts 0.." + std::to_string(a.texts.size() - 1),
                  ErrorKind::usage);
    sources.push_back({a.texts[t], "atlas text " + std::to_string(t), false});
  }
  const auto tokenizer = load_tokenizer(location.folder, sources);
  const tokenizer::Tokenizer* tok = tokenizer ? &*tokenizer : nullptr;
  const auto encoded = encode_texts(tok, sources, false, o.common);
  std::vector<int> layers;
  for (const auto& l : a.layers) layers.push_back(l.layer);
  auto e = embed(model, tok, encoded, layers, o.threads, SIZE_MAX, true);
  // Each re-embedded token's row in the atlas (the same text and position).
  std::vector<std::int64_t> self;
  std::vector<float> keep;
  std::vector<std::size_t> rows;
  for (std::size_t i = 0; i < e.tokens.size(); ++i) {
    const int t = chosen[e.tokens[i].text];
    std::int64_t row = -1;
    for (std::size_t j = 0; j < a.n; ++j)
      if (a.tokens[j].text == t && a.tokens[j].position == e.tokens[i].position)
        row = std::int64_t(j);
    if (row >= 0) {
      self.push_back(row);
      rows.push_back(i);
    }
  }
  if (rows.empty()) throw Error("no re-embedded token matches an atlas token");
  atlas::PlaceOptions po;
  po.threads = o.threads;
  po.iterations = o.iterations;
  std::printf("%zu tokens of %zu text(s), each placed with its own reference row left out\n",
              rows.size(), chosen.size());
  std::printf("layer\tdims\tmedian_displacement\tdiameter\trelative\tmean_confidence\n");
  for (std::size_t l = 0; l < layers.size(); ++l) {
    std::vector<float> raw(rows.size() * a.width);
    for (std::size_t r = 0; r < rows.size(); ++r)
      std::copy_n(e.states[l].data() + rows[r] * a.width, a.width, raw.data() + r * a.width);
    const auto placed = atlas::place(a, l, raw, rows.size(), po, self);
    for (std::size_t k = 0; k < placed.size(); ++k) {
      const auto& map = a.layers[l].maps[k];
      std::vector<double> moved;
      double confidence = 0;
      for (std::size_t r = 0; r < rows.size(); ++r) {
        double s2 = 0;
        for (int c = 0; c < map.dims; ++c) {
          const double t = double(placed[k].coords[r * map.dims + c]) -
                           map.coords[std::size_t(self[r]) * map.dims + c];
          s2 += t * t;
        }
        moved.push_back(std::sqrt(s2));
        confidence += placed[k].confidence[r] / double(rows.size());
      }
      std::sort(moved.begin(), moved.end());
      const double median = moved[moved.size() / 2];
      const double diameter = atlas::map_diameter(map, a.n);
      std::printf("%d\t%d\t%.3f\t%.1f\t%.4f\t%.3f\n", layers[l], map.dims, median, diameter,
                  median / diameter, confidence);
    }
  }
}

}  // namespace

void add_atlas_command(CLI::App& app) {
  auto* command = app.add_subcommand(
      "atlas", "Reference maps of a corpus (build, info) and placing new text into them (place)");
  command->require_subcommand(1);

  auto b = std::make_shared<AtlasBuildOptions>();
  auto* build = command->add_subcommand("build", "Embed a corpus and map every chosen layer once");
  add_model_flag(*build, b->model);
  add_text_input_flags(*build, b->input);
  build->add_option("-l,--layers", b->layers, "Layers: all, last, or a list such as 0,3,6")
      ->capture_default_str();
  build->add_option("--dims", b->dims, "Map dimensions: 2, 3 or 2,3")
      ->delimiter(',')
      ->capture_default_str();
  build->add_option("--perplexity", b->perplexity, "t-SNE perplexity")->capture_default_str();
  build->add_option("--rank", b->rank, "PCA dimensions of the stored feature space")
      ->check(whole_number(1))
      ->capture_default_str();
  build->add_option("--metric", b->metric, "cosine or euclidean")->capture_default_str();
  build->add_option("--iterations", b->iterations, "t-SNE iterations")
      ->check(whole_number(1))
      ->capture_default_str();
  build->add_option("--seed", b->seed, "Random seed")->capture_default_str();
  build->add_option("--max-tokens", b->max_tokens, "Keep at most this many corpus tokens")
      ->capture_default_str();
  build->add_option("--provenance", b->provenance,
                    "Free text stored in the atlas (source, licence)");
  build->add_option("-o,--out", b->out, "Output NAME.tokmap-atlas")->required();
  build->add_option("--threads", b->threads, "Threads (default: all cores)")
      ->check(whole_number(0));
  add_common_flags(*build, b->common);
  build->footer(
      "Examples:\n"
      "  tokmap atlas build --file samples/austen.jsonl --out austen.tokmap-atlas\n"
      "  tokmap atlas build --model gpt2 --file corpus.txt --layers 0,6,12 --dims 2,3 "
      "--out gpt2.tokmap-atlas");
  build->callback([b] { run_build(*b); });

  auto path = std::make_shared<std::string>();
  auto* info_command = command->add_subcommand("info", "Print what an atlas holds");
  info_command->add_option("file", *path, "NAME.tokmap-atlas")->required();
  info_command->footer("Example:\n  tokmap atlas info samples/austen.tokmap-atlas");
  info_command->callback([path] { run_info(*path); });

  auto ch = std::make_shared<AtlasCheckOptions>();
  auto* check = command->add_subcommand(
      "check", "Re-place some of the atlas's own texts leave-one-out and report how far they land");
  check->add_option("file", ch->atlas, "NAME.tokmap-atlas")->required();
  add_model_flag(*check, ch->model);
  check->add_option("--texts", ch->texts, "Atlas text indices (default: every 10th)")
      ->delimiter(',');
  check->add_option("--threads", ch->threads, "Threads (default: all cores)")
      ->check(whole_number(0));
  check->add_option("--iterations", ch->iterations, "Placement iterations")
      ->check(whole_number(0))
      ->capture_default_str();
  add_common_flags(*check, ch->common);
  check->footer("Example:\n  tokmap atlas check samples/austen.tokmap-atlas --texts 3,7");
  check->callback([ch] { run_check(*ch); });

  auto p = std::make_shared<AtlasPlaceOptions>();
  auto* place = command->add_subcommand(
      "place", "Place new text's tokens into an atlas's frozen maps (points.tsv with source)");
  place->add_option("--atlas", p->atlas, "NAME.tokmap-atlas")->required();
  add_model_flag(*place, p->model);
  add_text_input_flags(*place, p->input);
  place->add_option("-o,--out", p->out, "points.tsv (default: standard output)");
  place->add_option("--threads", p->threads, "Threads (default: all cores)")
      ->check(whole_number(0));
  place->add_option("--iterations", p->iterations, "Placement iterations")
      ->check(whole_number(0))
      ->capture_default_str();
  add_common_flags(*place, p->common);
  place->footer(
      "Example:\n"
      "  tokmap atlas place --atlas samples/austen.tokmap-atlas --text \"It is a truth "
      "universally acknowledged.\" --out points.tsv");
  place->callback([p] { run_place(*p); });
}

}  // namespace tokmap::cli
