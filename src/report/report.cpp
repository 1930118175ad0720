#include "report/report.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>

#include "io/io.hpp"
#include "io/json.hpp"

namespace tokmap::report {

namespace {

using json = nlohmann::json;

// JSON numbers: NaN/Inf have no JSON form; they become null.
json number(double value) { return std::isfinite(value) ? json(value) : json(nullptr); }

// Six significant digits are plenty on screen and keep the page small.
json float_array(const std::vector<float>& values, int digits = 6) {
  return io::json_floats(values, digits);
}

json rows(const std::vector<std::int32_t>& flat, std::size_t width) {
  json out = json::array();
  for (std::size_t i = 0; i + width <= flat.size(); i += width) {
    out.push_back(std::vector<std::int32_t>(flat.begin() + i, flat.begin() + i + width));
  }
  return out;
}

json float_rows(const std::vector<float>& flat, std::size_t width) {
  json out = json::array();
  for (std::size_t i = 0; i + width <= flat.size(); i += width) {
    out.push_back(float_array(std::vector<float>(flat.begin() + i, flat.begin() + i + width)));
  }
  return out;
}

json rating_json(const std::optional<analysis::Rating>& rating) {
  return rating ? json(analysis::rating_name(*rating)) : json(nullptr);
}

json double_array(const std::vector<double>& values) {
  json array = json::array();
  for (const double v : values) array.push_back(number(v));
  return array;
}

json assessment_json(const analysis::MapAssessment& a) {
  return {{"rating", analysis::rating_name(a.rating)},
          {"flags", a.flags},
          {"reasons", a.reasons},
          {"effective_dims", a.effective_dims},
          {"spread", double_array(a.spread)},
          {"coincident_fraction", number(a.coincident_fraction)},
          {"kl_ratio", number(a.kl_ratio)},
          {"random_trustworthiness", number(a.random_trustworthiness)},
          {"neighbors_meaningful", a.neighbors_meaningful},
          {"ratings",
           {{"kl", rating_json(a.kl_rating)},
            {"trustworthiness", rating_json(a.trustworthiness_rating)},
            {"continuity", rating_json(a.continuity_rating)},
            {"knn_preservation", rating_json(a.knn_rating)}}}};
}

std::string tsv_field(std::string_view text) {
  // TSV has no quoting: tabs and newlines would break rows.
  std::string out;
  for (const char c : text) {
    if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else {
      out += c;
    }
  }
  return out;
}

std::string format_float(float value) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

std::string format_number(double value) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

}  // namespace

std::string file_stem(std::string_view name) {
  std::string out;
  for (const char c : name) {
    const bool keep =
        std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    out += keep ? c : '_';
  }
  while (!out.empty() && out.front() == '.') out.front() = '_';  // no hidden files, no ".."
  return out.empty() ? "model" : out;
}

std::string token_kind(std::string_view bytes, int position, bool special) {
  if (special) return "special";
  const bool leading_space = !bytes.empty() && bytes.front() == ' ';
  bool any_letter = false, any_digit = false;
  for (std::size_t i = 0; i < bytes.size();) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c < 0x80) {
      any_letter |= std::isalpha(c) != 0;
      any_digit |= std::isdigit(c) != 0;
      ++i;
      continue;
    }
    // Decode one UTF-8 sequence; a token may hold only part of a character.
    const int length = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    if (length == 1 || i + length > bytes.size()) {
      any_letter = true;  // a fragment of a character: part of a word
      ++i;
      continue;
    }
    std::uint32_t cp = c & (0xFF >> (length + 1));
    for (int k = 1; k < length; ++k)
      cp = (cp << 6) | (static_cast<unsigned char>(bytes[i + k]) & 0x3F);
    i += static_cast<std::size_t>(length);
    // Punctuation and symbol blocks (dashes, quotes, arrows, maths, CJK punctuation, emoji)
    // are not letters; everything else outside ASCII is taken as one (é, ж, 日).
    const bool symbol = (cp >= 0x2000 && cp <= 0x2BFF) || (cp >= 0x3000 && cp <= 0x303F) ||
                        (cp >= 0x1F000) || cp == 0x00A0 || (cp >= 0x00A1 && cp <= 0x00BF);
    any_letter |= !symbol;
  }
  if (any_digit && !any_letter) return "number";
  if (!any_letter) return "punctuation";
  return leading_space || position == 0 ? "word" : "continuation";
}

std::string to_json(const ReportData& data) {
  json root;
  root["version"] = 1;
  root["title"] = data.title;
  root["created_with"] = data.created_with;
  root["texts"] = data.texts;
  root["models"] = data.models;
  root["layers"] = data.layers;
  root["perplexities"] = data.perplexities;
  root["seeds"] = data.seeds;
  root["dims"] = data.dims;
  json& tokens = root["tokens"] = json::array();
  for (const auto& t : data.tokens) {
    tokens.push_back({{"text", t.text},
                      {"position", t.position},
                      {"id", t.id},
                      {"display", t.display},
                      {"offset", {t.offset.first, t.offset.second}},
                      {"kind", t.kind}});
    if (!t.label.empty()) tokens.back()["label"] = t.label;
    if (!t.source.empty()) {
      tokens.back()["source"] = t.source;
      tokens.back()["confidence"] = t.confidence;
    }
    if (!t.pieces.empty()) {
      json& pieces = tokens.back()["pieces"] = json::array();
      for (const auto& of_model : t.pieces) {
        json& list = pieces.emplace_back(json::array());
        for (const auto& piece : of_model)
          list.push_back({{"display", piece.display}, {"id", piece.id}});
      }
    }
  }
  json& maps = root["maps"] = json::array();
  for (const auto& m : data.maps) {
    json entry = {{"model", m.model},
                  {"layer", m.layer},
                  {"perplexity", m.perplexity},
                  {"dims", m.dims},
                  {"coords", float_array(m.coords)},
                  {"kl", number(m.kl)},
                  {"trustworthiness", number(m.trustworthiness)},
                  {"continuity", number(m.continuity)},
                  {"knn_preservation", number(m.knn_preservation)},
                  {"k", m.k},
                  {"kl_uniform", number(m.kl_uniform)},
                  {"stability", m.stability ? number(*m.stability) : json(nullptr)},
                  {"point_stability",
                   m.point_stability.empty() ? json(nullptr) : float_array(m.point_stability)}};
    if (!m.seed_coords.empty()) {
      json& seeds = entry["seed_coords"] = json::array();
      for (const auto& coords : m.seed_coords) seeds.push_back(float_array(coords));
    }
    if (m.assessment) entry["assessment"] = assessment_json(*m.assessment);
    if (!m.seed_assessments.empty()) {
      json& list = entry["seed_assessments"] = json::array();
      for (const auto& a : m.seed_assessments) list.push_back(assessment_json(a));
    }
    if (!m.seed_kl.empty()) entry["seed_kl"] = double_array(m.seed_kl);
    if (!m.confidence.empty()) entry["confidence"] = float_array(m.confidence, 3);
    maps.push_back(std::move(entry));
  }
  json& analysis = root["analysis"] = json::array();
  for (const auto& a : data.analysis) {
    analysis.push_back({{"model", a.model},
                        {"layer", a.layer},
                        {"neighbors", rows(a.neighbors, a.neighbor_count)},
                        {"neighbor_distances", float_rows(a.neighbor_distances, a.neighbor_count)},
                        {"cluster", a.cluster},
                        {"outlier", float_array(a.outlier)},
                        {"top_outliers", a.top_outliers}});
  }
  if (!data.comparison.empty()) {
    json& pairs = root["comparison"]["pairs"] = json::array();
    const std::size_t n = data.tokens.size();
    for (const auto& p : data.comparison) {
      pairs.push_back({{"a", p.a},
                       {"b", p.b},
                       {"layer_a", p.layer_a},
                       {"layer_b", p.layer_b},
                       {"k", n >= 2 ? std::min(p.k, n - 1) : p.k},
                       {"overlap", float_array(p.overlap)},
                       {"mean", number(p.mean)},
                       {"most_changed", p.most_changed}});
    }
  }
  json& lens = root["lens"] = json::array();
  for (const auto& l : data.lens) {
    json layers = json::array();
    for (const auto& layer : l.layers) {
      layers.push_back({{"layer", layer.layer},
                        {"top_ids", rows(layer.top_ids, std::size_t(l.k))},
                        {"top_probs", float_rows(layer.top_probs, std::size_t(l.k))},
                        {"entropy", float_array(layer.entropy)}});
    }
    json tokens = json::object();
    for (const auto& [id, display] : l.tokens) tokens[std::to_string(id)] = display;
    lens.push_back({{"model", l.model},
                    {"k", l.k},
                    {"vocab_size", l.vocab_size},
                    {"final_layer", l.final_layer},
                    {"final_top1", l.final_top1},
                    {"layers", std::move(layers)},
                    {"tokens", std::move(tokens)}});
  }
  json& changes = root["changes"] = json::array();
  for (const auto& c : data.changes) {
    changes.push_back({{"model", c.model},
                       {"layer", c.layer},
                       {"previous_layer", c.previous_layer},
                       {"k", c.k},
                       {"jaccard", float_array(c.jaccard)},
                       {"mean", number(c.mean)},
                       {"most_changed", c.most_changed}});
  }
  json& pca = root["pca"] = json::array();
  for (const auto& v : data.pca) {
    pca.push_back({{"model", v.model},
                   {"layer", v.layer},
                   {"dims", v.dims},
                   // Four significant digits: off by at most 5e-5 of the view's extent (PCA
                   // coordinates are centred), far under a pixel; a fifth fewer PCA bytes.
                   {"coords", float_array(v.coords, 4)},
                   {"explained", double_array(v.explained)}});
  }
  root["settings"] = {{"metric", data.settings.metric},
                      {"normalize", data.settings.normalize},
                      {"exclude_first", data.settings.exclude_first},
                      {"highlight", data.settings.highlight},
                      {"highlight_tokens", data.settings.highlight_tokens},
                      {"logit_lens", data.settings.logit_lens}};
  if (data.settings.points != "tokens") root["settings"]["points"] = data.settings.points;
  std::string text = root.dump(-1, ' ', false, json::error_handler_t::replace);
  // Inside <script>, "</" could close the element early; "<\/" means the same in JSON.
  std::string safe;
  safe.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    safe += text[i];
    if (text[i] == '<' && i + 1 < text.size() && text[i + 1] == '/') safe += '\\';
  }
  return safe;
}

std::string page_html(std::string_view data_json, std::string_view live_json) {
  std::string html(page_template());
  const auto replace = [&](std::string_view placeholder, std::string_view with) {
    const std::size_t at = html.find(placeholder);
    if (at == std::string::npos) {
      throw Error("the bundled report page has no " + std::string(placeholder) +
                  " placeholder (build problem in web/)");
    }
    html.replace(at, placeholder.size(), with);
  };
  // The live configuration first: the data JSON may contain any text, placeholders included.
  replace("/*TOKMAP_LIVE*/null", live_json);
  replace("/*TOKMAP_DATA*/null", data_json);
  return html;
}

void write_html(const fs::path& path, const ReportData& data) {
  io::write_file_atomically(path, page_html(to_json(data)));
}

std::string read_data_json(const fs::path& index_html) {
  const std::string html = io::read_text_file(index_html);
  constexpr std::string_view kOpen = "<script type=\"application/json\" id=\"tokmap-data\">";
  const std::size_t begin = html.find(kOpen);
  const std::size_t end =
      begin == std::string::npos ? begin : html.find("</script>", begin + kOpen.size());
  if (end == std::string::npos) {
    throw Error(index_html.string() + ": not a tokmap report (no tokmap-data script element)");
  }
  // "<\/" is how to_json escapes "</"; JSON reads "\/" as "/", so the text parses as it is.
  return html.substr(begin + kOpen.size(), end - begin - kOpen.size());
}

void write_points_tsv(const fs::path& path, const ReportData& data) {
  // Atlas reports (viz --atlas) add where each row comes from and its placement confidence.
  const bool sourced = !data.tokens.empty() && !data.tokens.front().source.empty();
  std::string out =
      std::string(sourced ? "source\t" : "") +
      "model\tlayer\tperplexity\ttoken\ttext\tposition\tx\ty\tx3\ty3\tz3\tcluster\toutlier\tstabili"
      "ty\trating\trating3" +
      (sourced ? "\tconfidence\n" : "\n");
  const std::size_t n = data.tokens.size();
  for (std::size_t model = 0; model < data.models.size(); ++model) {
    for (const int layer : data.layers) {
      for (const double perplexity : data.perplexities) {
        const Map* map2 = nullptr;
        const Map* map3 = nullptr;
        for (const auto& m : data.maps) {
          if (m.model != int(model) || m.layer != layer || m.perplexity != perplexity) continue;
          (m.dims == 3 ? map3 : map2) = &m;
        }
        if (map2 == nullptr && map3 == nullptr) continue;
        const Analysis* analysis = nullptr;
        for (const auto& a : data.analysis) {
          if (a.model == int(model) && a.layer == layer) analysis = &a;
        }
        // The map's rating (first seed), the same on every row of the map: filter on it.
        auto rating_of = [](const Map* m) {
          return m != nullptr && m->assessment
                     ? std::string(analysis::rating_name(m->assessment->rating))
                     : std::string();
        };
        const std::string rating2 = rating_of(map2), rating3 = rating_of(map3);
        for (std::size_t i = 0; i < n; ++i) {
          const Token& t = data.tokens[i];
          if (sourced) out += tsv_field(t.source) + '\t';
          out += tsv_field(data.models[model]) + '\t' + std::to_string(layer) + '\t' +
                 format_number(perplexity) + '\t' + tsv_field(t.display) + '\t' +
                 std::to_string(t.text + 1) + '\t' + std::to_string(t.position) + '\t';
          if (map2 != nullptr) {
            out += format_float(map2->coords[2 * i]) + '\t' +
                   format_float(map2->coords[2 * i + 1]) + '\t';
          } else {
            out += "\t\t";
          }
          if (map3 != nullptr) {
            out += format_float(map3->coords[3 * i]) + '\t' +
                   format_float(map3->coords[3 * i + 1]) + '\t' +
                   format_float(map3->coords[3 * i + 2]) + '\t';
          } else {
            out += "\t\t\t";
          }
          out += (analysis ? std::to_string(analysis->cluster[i]) : "") + '\t' +
                 (analysis ? format_float(analysis->outlier[i]) : "") + '\t';
          const Map* stable = map2 != nullptr ? map2 : map3;
          if (!stable->point_stability.empty()) out += format_float(stable->point_stability[i]);
          out += '\t' + rating2 + '\t' + rating3;
          // This layer's confidence (its 2D map's, else its 3D map's), the token's otherwise.
          if (sourced) {
            const Map* placed = map2 != nullptr && !map2->confidence.empty()   ? map2
                                : map3 != nullptr && !map3->confidence.empty() ? map3
                                                                               : nullptr;
            out += '\t' + format_float(placed != nullptr ? placed->confidence[i] : t.confidence);
          }
          out += '\n';
        }
      }
    }
  }
  io::write_file_atomically(path, out);
}

void write_maps_tsv(const fs::path& path, const ReportData& data) {
  std::string out =
      "model\tlayer\tperplexity\tdims\tseed\tkl\tkl_uniform\tkl_"
      "ratio\ttrustworthiness\tcontinuity\tknn_"
      "preservation\tk\tstability\trating\teffective_dims\tcoincident_fraction\tflags\treasons\n";
  auto value = [](double v) { return std::isfinite(v) ? format_number(v) : std::string(); };
  auto join = [](const std::vector<std::string>& items, std::string_view separator) {
    std::string joined;
    for (std::size_t i = 0; i < items.size(); ++i)
      joined += (i ? std::string(separator) : "") + items[i];
    return joined;
  };
  for (const auto& m : data.maps) {
    const std::size_t seeds = 1 + m.seed_assessments.size();
    for (std::size_t s = 0; s < seeds; ++s) {
      const analysis::MapAssessment* a =
          s == 0 ? (m.assessment ? &*m.assessment : nullptr) : &m.seed_assessments[s - 1];
      const double kl = s == 0 ? m.kl : s - 1 < m.seed_kl.size() ? m.seed_kl[s - 1] : NAN;
      const bool first = s == 0;  // the neighbour numbers and stability are the first seed's
      out += tsv_field(data.models.at(m.model)) + '\t' + std::to_string(m.layer) + '\t' +
             format_number(m.perplexity) + '\t' + std::to_string(m.dims) + '\t' +
             (s < data.seeds.size() ? std::to_string(data.seeds[s]) : std::to_string(s)) + '\t' +
             value(kl) + '\t' + value(m.kl_uniform) + '\t' +
             (a ? value(a->kl_ratio) : std::string()) + '\t' +
             (first ? value(m.trustworthiness) : "") + '\t' + (first ? value(m.continuity) : "") +
             '\t' + (first ? value(m.knn_preservation) : "") + '\t' + std::to_string(m.k) + '\t' +
             (first && m.stability ? value(*m.stability) : "") + '\t' +
             (a ? analysis::rating_name(a->rating) : "") + '\t' +
             (a ? std::to_string(a->effective_dims) : "") + '\t' +
             (a ? value(a->coincident_fraction) : "") + '\t' + (a ? join(a->flags, ",") : "") +
             '\t' + (a ? tsv_field(join(a->reasons, "; ")) : "") + '\n';
    }
  }
  io::write_file_atomically(path, out);
}

const Map* worst_map(const ReportData& data, std::size_t* seed) {
  const Map* worst = nullptr;
  const analysis::MapAssessment* worst_a = nullptr;
  std::size_t worst_seed = 0;
  auto ratio = [](const analysis::MapAssessment& a) {
    return std::isfinite(a.kl_ratio) ? a.kl_ratio : 0.0;
  };
  for (const auto& m : data.maps) {
    for (std::size_t s = 0; s <= m.seed_assessments.size(); ++s) {
      const analysis::MapAssessment* a =
          s == 0 ? (m.assessment ? &*m.assessment : nullptr) : &m.seed_assessments[s - 1];
      if (a == nullptr) continue;
      bool worse = worst_a == nullptr || a->rating > worst_a->rating;
      if (!worse && a->rating == worst_a->rating) {
        if (ratio(*a) != ratio(*worst_a)) {
          worse = ratio(*a) > ratio(*worst_a);
        } else if (s == 0 && worst_seed == 0) {
          worse = m.trustworthiness < worst->trustworthiness;
        }
      }
      if (worse) {
        worst = &m;
        worst_a = a;
        worst_seed = s;
      }
    }
  }
  if (seed != nullptr) *seed = worst_seed;
  return worst;
}

void write_projector(const fs::path& folder, const ReportData& data,
                     const std::vector<ProjectorTensor>& tensors) {
  const std::size_t n = data.tokens.size();
  std::string metadata = "token\ttext\tposition\tkind\tcluster\n";
  const Analysis* first_analysis = data.analysis.empty() ? nullptr : &data.analysis.back();
  for (std::size_t i = 0; i < n; ++i) {
    const Token& t = data.tokens[i];
    metadata += tsv_field(t.display.empty() ? std::string("(empty)") : t.display) + '\t' +
                std::to_string(t.text + 1) + '\t' + std::to_string(t.position) + '\t' + t.kind +
                '\t' + (first_analysis ? std::to_string(first_analysis->cluster[i]) : "") + '\n';
  }
  json config;
  json& embeddings = config["embeddings"] = json::array();
  for (std::size_t e = 0; e < tensors.size(); ++e) {
    const auto& tensor = tensors[e];
    if (tensor.values == nullptr || tensor.values->size() != n * tensor.width) {
      throw Error("Projector export: tensor for layer " + std::to_string(tensor.layer) +
                  " has the wrong size");
    }
    const std::string name = e == 0 ? "tensors.tsv"
                                    : "tensors-" + file_stem(data.models[tensor.model]) + "-layer" +
                                          std::to_string(tensor.layer) + ".tsv";
    std::string values;
    values.reserve(n * tensor.width * 10);
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t c = 0; c < tensor.width; ++c) {
        if (c > 0) values += '\t';
        values += format_float((*tensor.values)[i * tensor.width + c]);
      }
      values += '\n';
    }
    io::write_file_atomically(folder / name, values);
    embeddings.push_back(
        {{"tensorName", data.models[tensor.model] + " layer " + std::to_string(tensor.layer)},
         {"tensorShape", {n, tensor.width}},
         {"tensorPath", name},
         {"metadataPath", "metadata.tsv"}});
  }
  io::write_file_atomically(folder / "metadata.tsv", metadata);
  io::write_file_atomically(folder / "projector_config.json", config.dump(2) + "\n");
}

}  // namespace tokmap::report
