#include <algorithm>
#include <cmath>
#include <map>

#include "explore/explore.hpp"
#include "explore/internal.hpp"
#include "render/render.hpp"

namespace tokmap::explore {

namespace {

std::string short_text(const std::string& text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  std::size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80)
    --cut;  // UTF-8 boundary
  return text.substr(0, cut) + "…";
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

void write_figures(const fs::path& dir, const Result& result, int cores) {
  const report::ReportData& data = result.data;
  const std::size_t n = data.tokens.size();
  const auto& texts = data.texts;
  fs::create_directory(dir / "figures");
  std::vector<render::Rgba> colors(n);
  for (std::size_t i = 0; i < n; ++i) colors[i] = render::categorical_color(data.tokens[i].text);
  std::vector<render::LegendEntry> legend;
  for (std::size_t t = 0; t < texts.size() && t < 12; ++t) {
    legend.push_back({render::categorical_color(t),
                      "text " + std::to_string(t + 1) + ": " + short_text(texts[t], 48)});
  }
  std::vector<std::string> labels(n);
  for (std::size_t i = 0; i < n; ++i) {
    labels[i] = data.tokens[i].label.empty() ? data.tokens[i].display : data.tokens[i].label;
  }
  // Label priority per (model, layer): outliers first (highlighted tokens always lead).
  std::map<std::pair<int, int>, std::vector<std::uint32_t>> label_orders;
  for (const auto& a : data.analysis) {
    auto& order = label_orders[{a.model, a.layer}];
    std::vector<std::uint8_t> listed(n, 0);
    for (const auto i : a.top_outliers) {
      order.push_back(static_cast<std::uint32_t>(i));
      listed[static_cast<std::size_t>(i)] = 1;
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (!listed[i]) order.push_back(static_cast<std::uint32_t>(i));
    }
  }
  auto points_of = [&](const report::Map& map) {
    render::Points points;
    points.dims = map.dims;
    points.coords = map.coords;
    points.colors = colors;
    points.labels = labels;
    points.emphasis = result.emphasis;
    points.label_order = label_orders.at({map.model, map.layer});
    return points;
  };
  const std::uint64_t seed = data.seeds.empty() ? 0 : data.seeds.front();
  const auto& settings = data.settings;
  // Figures are independent files: render them in parallel.
  std::vector<std::function<void()>> jobs;
  auto caption = [&](const report::Map& map) {
    return data.models[map.model] + " · layer " + std::to_string(map.layer) + " · perplexity " +
           format("%g", map.perplexity) + " · seed " + std::to_string(seed) + " · KL " +
           format("%.3f", map.kl) + " · trustworthiness " + format("%.3f", map.trustworthiness) +
           " · " + settings.metric + ", " + settings.normalize +
           (settings.exclude_first ? ", first tokens excluded" : "");
  };
  const std::vector<std::string> formats{".png", ".svg", ".pdf"};
  // Small multiples, three panels a row, fewer labels per panel.
  auto add_grid = [&](const std::vector<render::Panel>& panels, const std::string& grid_caption,
                      const std::string& stem) {
    render::FigureOptions grid;
    grid.width = 720;
    grid.height = 200.0 * std::ceil(panels.size() / 3.0) + 90;
    grid.legend = legend;
    grid.caption = grid_caption;
    grid.style.max_labels = 25;
    for (const auto& ext : formats) {
      const fs::path out = dir / "figures" / (stem + ext);
      jobs.push_back([=] { render::render_grid(out, panels, grid); });
    }
  };
  for (std::size_t m = 0; m < result.states.size(); ++m) {
    const std::string model_name = report::file_stem(data.models[m]);
    const int last_layer = result.states[m].layers.back();
    for (const double perplexity : data.perplexities) {
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
        } else if (map.layer == last_layer) {
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
    if (data.perplexities.size() > 1 &&
        std::find(data.dims.begin(), data.dims.end(), 2) != data.dims.end()) {
      std::vector<render::Panel> panels;
      for (const auto& map : data.maps) {
        if (map.model != int(m) || map.layer != last_layer || map.dims != 2) continue;
        render::Panel panel;
        panel.title =
            "perplexity " + format("%g", map.perplexity) + " · KL " + format("%.2f", map.kl);
        panel.points = points_of(map);
        panels.push_back(panel);
      }
      add_grid(panels,
               data.models[m] + " · layer " + std::to_string(last_layer) + " across perplexities",
               model_name + "-layer" + std::to_string(last_layer) + "-perplexities");
    }
  }
  run_parallel(jobs.size(), cores, [&](std::size_t i) { jobs[i](); });
}

}  // namespace

void write_report(const fs::path& folder, const Result& result, const WriteOptions& options) {
  const report::ReportData& data = result.data;
  report::write_html(folder / "index.html", data);
  report::write_points_tsv(folder / "points.tsv", data);
  report::write_maps_tsv(folder / "maps.tsv", data);
  std::vector<report::ProjectorTensor> projector;
  for (std::size_t m = 0; m < result.states.size(); ++m) {
    const auto& s = result.states[m];
    for (std::size_t l = s.layers.size(); l-- > 0;) {
      projector.push_back({static_cast<int>(m), s.layers[l], s.width, &s.hidden[l]});
    }
  }
  report::write_projector(folder, data, projector);
  if (options.figures) write_figures(folder, result, core_count(options.threads));
}

std::string summary(const Result& result) {
  const report::ReportData& data = result.data;
  std::string out = std::to_string(data.tokens.size()) +
                    (data.settings.points == "spans" ? " aligned spans, " : " tokens, ") +
                    std::to_string(data.maps.size()) + " maps in " +
                    format("%.2f", result.seconds) + " s";
  for (const auto& map : data.maps) {
    if (map.model == 0 && map.dims == 2 && map.layer == data.layers.back() &&
        map.perplexity == data.perplexities[0]) {
      out += "; layer " + std::to_string(map.layer) + ": KL " + format("%.3f", map.kl) +
             ", trustworthiness " + format("%.3f", map.trustworthiness);
    }
  }
  return out + "; " + map_verdict(data);
}

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

}  // namespace tokmap::explore
