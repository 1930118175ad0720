// Sample figures for looking at the renderer's output by eye: render_samples OUT_DIR [N]
// Writes map.png/.svg/.pdf (one 2D map), grid.png (2 x 3 small multiples), views.png (3D views)
// and big.png (N points, default 100000).
#include <cstdio>
#include <exception>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "render/render.hpp"

namespace rd = tokmap::render;

namespace {

const char* kWords[] = {
    "the",   "of",    "and",    "to",    "in",     "a",     "is",      "that",   "for",  "it",
    "as",    "was",   "with",   "be",    "by",     "on",    "not",     "he",     "I",    "this",
    "are",   "or",    "his",    "from",  "at",     "which", "but",     "have",   "an",   "had",
    "they",  "you",   "were",   "their", "one",    "all",   "we",      "can",    "her",  "has",
    "there", "been",  "if",     "more",  "when",   "will",  "would",   "who",    "so",   "no",
    "fox",   "dog",   "quick",  "brown", "lazy",   "jumps", "over",    "river",  "bank", "money",
    "loan",  "water", "stream", "city",  "London", "Paris", "king",    "queen",  "man",  "woman",
    "child", "house", "time",   "year",  "day",    "night", "morning", "2019",   "1984", "42",
    ",",     ".",     ";",      "\"",    "(",      ")",     "running", "walked", "said", "thought",
    "ing",   "ed",    "ly",     "tion",  "ment",   "ness",
};
constexpr std::size_t kWordCount = sizeof(kWords) / sizeof(kWords[0]);

struct Cloud {
  std::vector<float> coords;
  std::vector<rd::Rgba> colors;
  std::vector<std::string> labels;
  std::vector<std::uint8_t> emphasis;
  std::vector<std::uint32_t> order;
  rd::Points points(int dims) const {
    rd::Points p;
    p.dims = dims;
    p.coords = coords;
    p.colors = colors;
    p.labels = labels;
    p.emphasis = emphasis;
    p.label_order = order;
    return p;
  }
};

// n points in `groups` texts, each text a few sub-clusters; `mixing` pulls the clusters together.
Cloud make_cloud(std::size_t n, int dims, int groups, double mixing, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  Cloud c;
  int sub = 4;
  std::vector<double> centres(static_cast<std::size_t>(groups * sub * dims));
  for (auto& v : centres) v = 9.0 * normal(rng);
  for (std::size_t i = 0; i < n; ++i) {
    int g = static_cast<int>(i % static_cast<std::size_t>(groups));
    int s = static_cast<int>(rng() % static_cast<unsigned>(sub));
    for (int d = 0; d < dims; ++d) {
      double centre = centres[static_cast<std::size_t>((g * sub + s) * dims + d)] * (1 - mixing);
      c.coords.push_back(static_cast<float>(centre + 1.6 * normal(rng)));
    }
    c.colors.push_back(rd::categorical_color(static_cast<std::size_t>(g)));
    c.labels.push_back(kWords[(i * 7 + i / 13) % kWordCount]);
    c.emphasis.push_back(c.labels.back() == std::string("fox") && i < 600 ? 1 : 0);
  }
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: render_samples OUT_DIR [N]\n");
    return 2;
  }
  std::filesystem::path dir = argv[1];
  std::size_t big = argc > 2 ? std::stoul(argv[2]) : 100000;
  try {
    std::filesystem::create_directories(dir);
    std::vector<rd::LegendEntry> legend = {{rd::categorical_color(0), "text 1: news"},
                                           {rd::categorical_color(1), "text 2: fiction"},
                                           {rd::categorical_color(2), "text 3: code comments"}};
    rd::FigureOptions o;
    o.legend = legend;
    o.caption =
        "demo-brown-gpt2 \xC2\xB7 layer 6 \xC2\xB7 perplexity 15 \xC2\xB7 seed 0 \xC2\xB7 KL 0.83 "
        "\xC2\xB7 trustworthiness 0.93\nhighlighted: fox";
    Cloud map = make_cloud(300, 2, 3, 0.0, 1);
    for (const char* ext : {"png", "svg", "pdf"}) {
      rd::render_scatter(dir / ("map." + std::string(ext)), map.points(2), o);
    }

    std::vector<Cloud> layers;
    std::vector<rd::Panel> panels;
    for (int l = 0; l < 6; ++l) layers.push_back(make_cloud(300, 2, 3, 0.8 - 0.15 * l, 10 + l));
    for (int l = 0; l < 6; ++l) {
      panels.push_back({"layer " + std::to_string(2 * l + 1), layers[l].points(2), {}});
    }
    rd::FigureOptions g = o;
    g.caption = "demo-brown-gpt2 \xC2\xB7 perplexity 15 \xC2\xB7 seed 0";
    g.style.max_labels = 40;
    rd::render_grid(dir / "grid.png", panels, g);

    Cloud cloud3 = make_cloud(400, 3, 3, 0.0, 3);
    rd::FigureOptions v = o;
    v.caption = "demo-brown-gpt2 \xC2\xB7 layer 6 \xC2\xB7 3D \xC2\xB7 perplexity 15";
    v.style.max_labels = 30;
    rd::render_views(dir / "views.png", cloud3.points(3), {}, v);
    rd::render_scatter(dir / "one3d.png", cloud3.points(3), o, rd::Camera{45, 25});

    // Twelve categories (the palette past Okabe-Ito's eight), a wrapping legend and a title.
    Cloud twelve = make_cloud(1200, 2, 12, 0.0, 5);
    rd::FigureOptions t;
    t.title = "Twelve texts";
    for (std::size_t k = 0; k < 12; ++k) {
      t.legend.push_back({rd::categorical_color(k), "text " + std::to_string(k + 1)});
    }
    t.caption = "1200 points \xC2\xB7 palette beyond eight colours";
    t.style.max_labels = 60;
    rd::render_scatter(dir / "twelve.png", twelve.points(2), t);

    // A continuous colour (position in the text) with viridis.
    Cloud ramp = make_cloud(2000, 2, 3, 0.0, 6);
    for (std::size_t i = 0; i < ramp.colors.size(); ++i) {
      ramp.colors[i] = rd::colormap_color(rd::ColorMap::viridis, static_cast<double>(i) / 1999.0);
    }
    rd::FigureOptions vr;
    vr.legend = {{rd::colormap_color(rd::ColorMap::viridis, 0), "first token"},
                 {rd::colormap_color(rd::ColorMap::viridis, 0.5), "middle"},
                 {rd::colormap_color(rd::ColorMap::viridis, 1), "last token"}};
    vr.style.labels = false;
    vr.width = 360;
    vr.height = 340;
    rd::render_scatter(dir / "viridis.png", ramp.points(2), vr);

    Cloud many = make_cloud(big, 2, 8, 0.0, 4);
    rd::FigureOptions b;
    b.caption = std::to_string(big) + " points";
    rd::render_scatter(dir / "big.png", many.points(2), b);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "render_samples: %s\n", e.what());
    return 1;
  }
  return 0;
}
