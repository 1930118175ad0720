#include "render/render.hpp"

#include <cairo.h>
#include <fontconfig/fontconfig.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "io/io.hpp"

namespace rd = tokmap::render;
namespace fs = std::filesystem;

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

// A fresh folder per test, removed afterwards.
class RenderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("tokmap_render_test_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Image {
  int width = 0, height = 0, stride = 0;
  std::vector<unsigned char> data;  // ARGB32 premultiplied, native endian
  bool ok = false;
  // r, g, b in 0..255 (un-premultiplied is not needed: the background is opaque white)
  void rgb(int x, int y, int& r, int& g, int& b) const {
    auto px = *reinterpret_cast<const std::uint32_t*>(
        &data[static_cast<std::size_t>(y) * stride + static_cast<std::size_t>(x) * 4]);
    r = (px >> 16) & 0xFF;
    g = (px >> 8) & 0xFF;
    b = px & 0xFF;
  }
  // Pixels that differ from white.
  std::size_t ink() const {
    std::size_t count = 0;
    for (int y = 0; y < height; ++y) {
      for (int x = 0; x < width; ++x) {
        int r, g, b;
        rgb(x, y, r, g, b);
        if (r < 240 || g < 240 || b < 240) ++count;
      }
    }
    return count;
  }
};

Image read_png(const fs::path& path) {
  Image image;
  cairo_surface_t* s = cairo_image_surface_create_from_png(path.c_str());
  if (cairo_surface_status(s) == CAIRO_STATUS_SUCCESS) {
    cairo_surface_flush(s);
    image.width = cairo_image_surface_get_width(s);
    image.height = cairo_image_surface_get_height(s);
    image.stride = cairo_image_surface_get_stride(s);
    const unsigned char* d = cairo_image_surface_get_data(s);
    image.data.assign(d, d + static_cast<std::size_t>(image.stride) * image.height);
    image.ok = true;
  }
  cairo_surface_destroy(s);
  return image;
}

struct Data {
  std::vector<float> coords;
  std::vector<rd::Rgba> colors;
  std::vector<std::string> labels;
  std::vector<std::uint8_t> emphasis;
  rd::Points points(int dims = 2) const {
    rd::Points p;
    p.dims = dims;
    p.coords = coords;
    p.colors = colors;
    p.labels = labels;
    p.emphasis = emphasis;
    return p;
  }
};

// n points in three gaussian blobs, labelled "w<i>", every 50th highlighted.
Data blobs(std::size_t n, int dims, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  Data d;
  for (std::size_t i = 0; i < n; ++i) {
    int g = static_cast<int>(i % 3);
    for (int k = 0; k < dims; ++k) {
      float centre = (k == g % dims) ? 6.0f : 0.0f;
      d.coords.push_back(centre + 2.0f * (unit(rng) + unit(rng) + unit(rng)) / 3.0f);
    }
    d.colors.push_back(rd::categorical_color(static_cast<std::size_t>(g)));
    d.labels.push_back("w" + std::to_string(i));
    d.emphasis.push_back(i % 50 == 7 ? 1 : 0);
  }
  return d;
}

bool have_program(const char* name) {
  std::string cmd = std::string("command -v ") + name + " >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

std::size_t files_in(const fs::path& dir) {
  return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir), {}));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Palettes

TEST(Palette, OkabeItoFirstEight) {
  // The report page (web/src/palette.js) uses the same order.
  const char* expected[] = {"#0072b2", "#e69f00", "#009e73", "#d55e00",
                            "#cc79a7", "#56b4e9", "#f0e442", "#000000"};
  for (std::size_t i = 0; i < 8; ++i) EXPECT_EQ(rd::palette_hex(i), expected[i]) << i;
}

TEST(Palette, ExtendedBeyondEightIsDistinctAndDeterministic) {
  std::vector<std::string> seen;
  for (std::size_t i = 0; i < 40; ++i) {
    std::string h = rd::palette_hex(i);
    EXPECT_EQ(h, rd::palette_hex(i));
    EXPECT_EQ(std::count(seen.begin(), seen.end(), h), 0) << "index " << i << " repeats " << h;
    EXPECT_NE(h, "#ffffff");
    seen.push_back(h);
  }
  EXPECT_EQ(rd::categorical_palette(12).size(), 12u);
  EXPECT_EQ(rd::categorical_palette(12)[9], rd::categorical_color(9));
}

TEST(Palette, ViridisAndCividis) {
  EXPECT_EQ(rd::colormap_table(rd::ColorMap::viridis).front(), 0x440154u);
  EXPECT_EQ(rd::colormap_table(rd::ColorMap::viridis).back(), 0xFDE725u);
  EXPECT_EQ(rd::colormap_hex(rd::ColorMap::viridis, 0.0), "#440154");
  EXPECT_EQ(rd::colormap_hex(rd::ColorMap::viridis, 1.0), "#fde725");
  EXPECT_EQ(rd::colormap_hex(rd::ColorMap::viridis, 0.5), "#21918c");
  EXPECT_EQ(rd::colormap_hex(rd::ColorMap::viridis, -3.0), "#440154");  // clamped
  EXPECT_EQ(rd::colormap_hex(rd::ColorMap::viridis, NAN), "#440154");
  EXPECT_EQ(rd::colormap_hex(rd::ColorMap::cividis, 0.0), "#00224e");
  EXPECT_EQ(rd::colormap_hex(rd::ColorMap::cividis, 1.0), "#fee838");
}

TEST(Palette, HexRoundTrip) {
  EXPECT_EQ(rd::to_hex(rd::parse_hex("#56B4E9")), "#56b4e9");
  EXPECT_DOUBLE_EQ(rd::parse_hex("#00000080").a, 128 / 255.0);
  EXPECT_EQ(rd::parse_hex("E69F00"), rd::rgb(0xE69F00));
  EXPECT_THROW(rd::parse_hex("#12345"), tokmap::Error);
  EXPECT_THROW(rd::parse_hex("#12345G"), tokmap::Error);
}

// ---------------------------------------------------------------------------------------------
// Label placement

TEST(Labels, RandomPlacementsAreDisjointAndInside) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 30; ++trial) {
    std::uniform_real_distribution<double> pos(-20, 420), size(4, 40);
    std::size_t n = 50 + rng() % 400;
    std::vector<rd::LabelRequest> requests(n);
    for (auto& q : requests) q = {pos(rng), pos(rng), size(rng), 6 + size(rng) / 8, 1.5};
    rd::Box bounds{0, 0, 400, 300};
    rd::LabelOptions options;
    options.max_labels = 60 + rng() % 200;
    std::vector<float> obstacles;
    for (const auto& q : requests) {
      obstacles.push_back(static_cast<float>(q.x));
      obstacles.push_back(static_cast<float>(q.y));
    }
    auto placed =
        rd::place_labels(requests, bounds, options, trial % 2 ? obstacles : std::vector<float>{});
    ASSERT_FALSE(placed.empty());
    EXPECT_LE(placed.size(), options.max_labels);
    for (std::size_t a = 0; a < placed.size(); ++a) {
      const rd::Box& box = placed[a].box;
      EXPECT_TRUE(box.inside(bounds));
      const auto& q = requests[placed[a].request];
      EXPECT_NEAR(box.x1 - box.x0, q.width, 1e-9);
      EXPECT_NEAR(box.y1 - box.y0, q.height, 1e-9);
      // Next to its point: within the marker radius + gap + the box size.
      double cx = std::clamp(q.x, box.x0, box.x1), cy = std::clamp(q.y, box.y0, box.y1);
      EXPECT_LE(std::hypot(cx - q.x, cy - q.y), q.radius + options.gap + 1e-9);
      if (a > 0) {
        EXPECT_GT(placed[a].request, placed[a - 1].request);  // priority order
      }
      for (std::size_t b = a + 1; b < placed.size(); ++b) {
        ASSERT_FALSE(box.intersects(placed[b].box)) << "labels " << a << " and " << b << " overlap";
      }
    }
  }
}

TEST(Labels, FirstLabelAlwaysPlacedAndCrowdSkipped) {
  // 100 labels on one spot: a handful of positions around it, the rest skipped.
  std::vector<rd::LabelRequest> requests(100, rd::LabelRequest{200, 150, 30, 8, 2});
  auto placed = rd::place_labels(requests, rd::Box{0, 0, 400, 300});
  ASSERT_FALSE(placed.empty());
  EXPECT_EQ(placed[0].request, 0u);
  EXPECT_EQ(placed[0].box.x0, 200 + 2 + 1.5);  // right of the point
  EXPECT_LE(placed.size(), 8u);
}

TEST(Labels, OutsideCandidatesAreSkipped) {
  std::vector<rd::LabelRequest> requests = {{1, 1, 500, 8, 1}, {399, 150, 30, 8, 1}};
  auto placed = rd::place_labels(requests, rd::Box{0, 0, 400, 300});
  ASSERT_EQ(placed.size(), 1u);
  EXPECT_EQ(placed[0].request, 1u);
  EXPECT_LT(placed[0].box.x1, 399);  // went to the left
}

TEST(Labels, HighlightedComeFirst) {
  std::vector<std::uint8_t> emphasis = {0, 1, 0, 0, 1, 0};
  std::vector<std::uint32_t> order = {5, 4, 3, 2, 1, 0};
  std::vector<float> coords(12, 0.0f);
  rd::Points p;
  p.coords = coords;
  p.emphasis = emphasis;
  p.label_order = order;
  EXPECT_EQ(rd::label_priority(p), (std::vector<std::uint32_t>{4, 1, 5, 3, 2, 0}));
  p.label_order = {};
  EXPECT_EQ(rd::label_priority(p), (std::vector<std::uint32_t>{1, 4, 0, 2, 3, 5}));
}

// ---------------------------------------------------------------------------------------------
// Figures

TEST_F(RenderTest, PngDecodesAtTwiceTheSizeWithInkWherePointsAre) {
  // Three far-apart points; the middle one highlighted in vermillion.
  std::vector<float> coords = {0, 0, 10, 5, 20, 10};
  std::vector<rd::Rgba> colors = {rd::rgb(0x0072B2), rd::rgb(0xD55E00), rd::rgb(0x0072B2)};
  std::vector<std::string> labels = {"alpha", "beta", "gamma"};
  std::vector<std::uint8_t> emphasis = {0, 1, 0};
  rd::Points p;
  p.coords = coords;
  p.colors = colors;
  p.labels = labels;
  p.emphasis = emphasis;
  rd::FigureOptions o;
  o.width = 300;
  o.height = 200;
  o.legend = {{rd::rgb(0xD55E00), "highlighted"}};
  o.caption = "model \xC2\xB7 layer 6\nsecond line";
  fs::path out = dir_ / "map.png";
  rd::RenderResult r = rd::render_scatter(out, p, o);
  Image image = read_png(out);
  ASSERT_TRUE(image.ok);
  EXPECT_EQ(image.width, 600);
  EXPECT_EQ(image.height, 400);
  EXPECT_GT(image.ink(), 1000u);

  ASSERT_EQ(r.panels.size(), 1u);
  const rd::PanelLayout& l = r.panels[0];
  EXPECT_EQ(l.labelled.size(), 3u);
  EXPECT_EQ(l.labelled[0], 1u);  // the highlighted label first
  int px = static_cast<int>(std::lround(2 * (l.offset_x + l.scale * 10)));
  int py = static_cast<int>(std::lround(2 * (l.offset_y - l.scale * 5)));
  int red, green, blue;
  image.rgb(px, py, red, green, blue);
  EXPECT_GT(red, 180);
  EXPECT_LT(blue, 80);
  // Equal aspect ratio: the frame holds the data's 2:1 shape (plus the same padding).
  double fw = l.frame.x1 - l.frame.x0, fh = l.frame.y1 - l.frame.y0;
  EXPECT_GT(fw, fh);
  EXPECT_NEAR((fw - fh) / l.scale, 10.0, 1e-6);
}

TEST_F(RenderTest, SvgIsWellFormed) {
  Data d = blobs(200, 2, 1);
  fs::path out = dir_ / "map.svg";
  rd::FigureOptions o;
  o.caption = "a & b < c";  // escaped (drawn as glyphs)
  rd::render_scatter(out, d.points(), o);
  std::string svg = read_bytes(out);
  ASSERT_FALSE(svg.empty());
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_NE(svg.find("width=\"504pt\""), std::string::npos);
  if (have_program("xmllint")) {
    std::string cmd = "xmllint --noout '" + out.string() + "'";
    EXPECT_EQ(std::system(cmd.c_str()), 0);
  }
}

TEST_F(RenderTest, PdfIsValid) {
  Data d = blobs(200, 2, 2);
  fs::path out = dir_ / "map.pdf";
  rd::render_scatter(out, d.points());
  std::string pdf = read_bytes(out);
  EXPECT_EQ(pdf.rfind("%PDF-", 0), 0u);
  EXPECT_NE(pdf.find("%%EOF"), std::string::npos);
  if (!have_program("pdftoppm")) GTEST_SKIP() << "pdftoppm not installed (poppler-utils)";
  std::string cmd = "pdftoppm -png -r 50 '" + out.string() + "' '" + (dir_ / "page").string() + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  fs::path page;
  for (const auto& e : fs::directory_iterator(dir_)) {
    if (e.path().filename().string().rfind("page", 0) == 0) page = e.path();
  }
  ASSERT_FALSE(page.empty());
  Image image = read_png(page);
  ASSERT_TRUE(image.ok);
  EXPECT_EQ(image.width, 350);  // 7 in at 50 dpi
  EXPECT_GT(image.ink(), 500u);
}

TEST_F(RenderTest, SameInputSameBytes) {
  Data d = blobs(500, 2, 3);
  rd::FigureOptions o;
  o.legend = {{rd::categorical_color(0), "one"}, {rd::categorical_color(1), "two"}};
  o.caption = "determinism";
  rd::render_scatter(dir_ / "a.png", d.points(), o);
  rd::render_scatter(dir_ / "b.png", d.points(), o);
  rd::render_scatter(dir_ / "a.svg", d.points(), o);
  rd::render_scatter(dir_ / "b.svg", d.points(), o);
  EXPECT_EQ(read_bytes(dir_ / "a.png"), read_bytes(dir_ / "b.png"));
  EXPECT_EQ(read_bytes(dir_ / "a.svg"), read_bytes(dir_ / "b.svg"));
}

TEST_F(RenderTest, RenderedLabelsDisjointHighlightedFirst) {
  Data d = blobs(600, 2, 4);
  rd::FigureOptions o;
  o.style.max_labels = 80;
  rd::RenderResult r = rd::render_scatter(dir_ / "map.png", d.points(), o);
  const rd::PanelLayout& l = r.panels[0];
  ASSERT_GT(l.labelled.size(), 10u);
  EXPECT_LE(l.labelled.size(), 80u);
  bool others = false;
  for (std::size_t a = 0; a < l.labelled.size(); ++a) {
    bool emph = d.emphasis[l.labelled[a]] != 0;
    if (!emph) others = true;
    EXPECT_FALSE(emph && others) << "highlighted label after an ordinary one";
    EXPECT_TRUE(l.label_boxes[a].inside(l.frame));
    for (std::size_t b = a + 1; b < l.labelled.size(); ++b) {
      EXPECT_FALSE(l.label_boxes[a].intersects(l.label_boxes[b]));
    }
  }
  EXPECT_TRUE(d.emphasis[l.labelled[0]]);
}

TEST_F(RenderTest, GridAndViews) {
  std::vector<Data> layers;
  for (unsigned k = 0; k < 6; ++k) layers.push_back(blobs(150, 2, 10 + k));
  std::vector<rd::Panel> panels;
  for (unsigned k = 0; k < 6; ++k) {
    panels.push_back({"layer " + std::to_string(k), layers[k].points(), {}});
  }
  rd::FigureOptions o;
  o.legend = {{rd::categorical_color(0), "a"}, {rd::categorical_color(1), "b"}};
  o.caption = "across layers";
  rd::RenderResult grid = rd::render_grid(dir_ / "grid.png", panels, o);
  ASSERT_EQ(grid.panels.size(), 6u);
  // 3 x 2 with equal frames, no two frames overlapping.
  for (std::size_t a = 0; a < 6; ++a) {
    EXPECT_NEAR(grid.panels[a].frame.x1 - grid.panels[a].frame.x0,
                grid.panels[0].frame.x1 - grid.panels[0].frame.x0, 1e-9);
    for (std::size_t b = a + 1; b < 6; ++b) {
      EXPECT_FALSE(grid.panels[a].frame.intersects(grid.panels[b].frame));
    }
  }
  EXPECT_NEAR(grid.panels[1].frame.y0, grid.panels[0].frame.y0, 1e-9);
  EXPECT_GT(grid.panels[3].frame.y0, grid.panels[0].frame.y1);
  EXPECT_GT(read_png(dir_ / "grid.png").ink(), 2000u);

  Data cloud = blobs(300, 3, 5);
  rd::RenderResult views = rd::render_views(dir_ / "views.pdf", cloud.points(3), {}, o);
  EXPECT_EQ(views.panels.size(), 4u);
  EXPECT_NEAR(views.panels[0].scale, views.panels[3].scale, 1e-9);  // one scale for all views
  EXPECT_THROW(rd::render_views(dir_ / "bad.png", layers[0].points(2)), tokmap::Error);
}

TEST_F(RenderTest, ThreeDimensionsDrawBackToFront) {
  // Seen from azimuth 0, elevation 0 (looking down -x), the points at x = +1 (red, near) and
  // x = -1 (blue, far) fall on the same pixel; the near one must be on top.
  std::vector<float> coords = {1, 0, 0, -1, 0, 0, 0, 1, 1, 0, -1, -1};
  std::vector<rd::Rgba> colors = {rd::rgb(0xD55E00), rd::rgb(0x0072B2), rd::rgb(0x999999),
                                  rd::rgb(0x999999)};
  rd::Points p;
  p.dims = 3;
  p.coords = coords;
  p.colors = colors;
  rd::FigureOptions o;
  o.width = o.height = 200;
  o.style.point_size = 12;
  o.style.point_alpha = 1;
  rd::RenderResult r = rd::render_scatter(dir_ / "3d.png", p, o, rd::Camera{0, 0});
  Image image = read_png(dir_ / "3d.png");
  ASSERT_TRUE(image.ok);
  const rd::PanelLayout& l = r.panels[0];
  int px = static_cast<int>(std::lround(2 * l.offset_x));
  int py = static_cast<int>(std::lround(2 * l.offset_y));
  int red, green, blue;
  image.rgb(px, py, red, green, blue);
  EXPECT_GT(red, 200);
  EXPECT_LT(blue, 100);
  // Turned half way round, the blue point is in front.
  r = rd::render_scatter(dir_ / "3d.png", p, o, rd::Camera{180, 0});
  image = read_png(dir_ / "3d.png");
  image.rgb(px, py, red, green, blue);
  EXPECT_GT(blue, 150);
  EXPECT_LT(red, 100);
}

TEST_F(RenderTest, UnwritablePathFailsNamingItAndLeavesNothing) {
  Data d = blobs(20, 2, 6);
  fs::path missing = dir_ / "no-such-folder" / "map.png";
  try {
    rd::render_scatter(missing, d.points());
    FAIL() << "expected an error";
  } catch (const tokmap::Error& e) {
    EXPECT_NE(std::string(e.what()).find(missing.string()), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(missing));

  // A regular file where the folder should be.
  { std::ofstream(dir_ / "file") << "x"; }
  fs::path under_file = dir_ / "file" / "map.svg";
  try {
    rd::render_scatter(under_file, d.points());
    FAIL() << "expected an error";
  } catch (const tokmap::Error& e) {
    EXPECT_NE(std::string(e.what()).find(under_file.string()), std::string::npos) << e.what();
  }
  // The output path is a folder.
  fs::create_directories(dir_ / "folder.pdf");
  EXPECT_THROW(rd::render_scatter(dir_ / "folder.pdf", d.points()), tokmap::Error);
  EXPECT_EQ(files_in(dir_), 2u);  // "file" and "folder.pdf": no temporary files left
  EXPECT_TRUE(fs::is_empty(dir_ / "folder.pdf"));
}

TEST_F(RenderTest, BadInputsAreErrors) {
  Data d = blobs(10, 2, 7);
  auto expect_usage = [&](const fs::path& out, const rd::Points& p, const rd::FigureOptions& o) {
    try {
      rd::render_scatter(out, p, o);
      ADD_FAILURE() << "expected an error for " << out;
    } catch (const tokmap::Error& e) {
      EXPECT_EQ(e.kind(), tokmap::ErrorKind::usage) << e.what();
      EXPECT_NE(std::string(e.what()).find(out.string()), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(out));
  };
  rd::FigureOptions o;
  expect_usage(dir_ / "map.jpg", d.points(), o);
  rd::Points p = d.points();
  p.labels = std::span<const std::string>(d.labels).first(3);
  expect_usage(dir_ / "labels.png", p, o);
  p = d.points();
  p.colors = std::span<const rd::Rgba>(d.colors).first(2);
  expect_usage(dir_ / "colors.png", p, o);
  p = d.points();
  p.coords = std::span<const float>(d.coords).first(5);
  expect_usage(dir_ / "odd.png", p, o);
  p = d.points();
  p.dims = 4;
  expect_usage(dir_ / "dims.png", p, o);
  rd::FigureOptions huge;
  huge.width = 1e9;
  expect_usage(dir_ / "huge.png", d.points(), huge);
  rd::FigureOptions nan_size;
  nan_size.height = NAN;
  expect_usage(dir_ / "nan.png", d.points(), nan_size);
}

TEST_F(RenderTest, OddInputsStillRender) {
  // Invalid UTF-8 and control characters in labels, NaN coordinates, no points, one point, all
  // points equal, a single colour for all.
  std::vector<float> coords = {0, 0, NAN, 1, 1, 1, 1, 1};
  std::vector<std::string> labels = {"\xFF\xFE bad", "nan", "tab\there", "  "};
  std::vector<rd::Rgba> one = {rd::rgb(0xCC79A7)};
  rd::Points p;
  p.coords = coords;
  p.labels = labels;
  p.colors = one;
  rd::FigureOptions o;
  o.caption = "bad \xC0 utf8\x01";
  o.legend = {{rd::rgb(0), "\xE2\x82"}};
  rd::RenderResult r = rd::render_scatter(dir_ / "odd.png", p, o);
  EXPECT_EQ(r.panels[0].labelled.size(), 2u);  // the NaN point and the blank label are skipped
  EXPECT_TRUE(read_png(dir_ / "odd.png").ok);

  rd::render_scatter(dir_ / "empty.svg", rd::Points{});
  std::vector<float> single = {3, 4};
  rd::Points s;
  s.coords = single;
  rd::render_scatter(dir_ / "single.pdf", s);
  std::vector<float> same(200, 2.5f);
  s.coords = same;
  rd::render_scatter(dir_ / "same.png", s);
  std::vector<float> same3(300, 1.0f);
  s.coords = same3;
  s.dims = 3;
  rd::render_views(dir_ / "same3.png", s);
  EXPECT_EQ(files_in(dir_), 5u);
}

TEST_F(RenderTest, HundredThousandPointsAreFast) {
  // Sanitizer builds use fewer points: the check there is memory safety, not speed.
  std::size_t n = kSanitized ? 20000 : 100000;
  Data d = blobs(n, 2, 8);
  auto start = std::chrono::steady_clock::now();
  rd::RenderResult r = rd::render_scatter(dir_ / "big.png", d.points());
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.panels[0].labelled.size() <= 150, true);
  EXPECT_GT(read_png(dir_ / "big.png").ink(), 20000u);
#ifdef NDEBUG
  if (!kSanitized) {
    EXPECT_LT(seconds, 2.0);
  }
#endif
  RecordProperty("seconds", std::to_string(seconds));
}

TEST_F(RenderTest, DefaultLabelOrderReachesEveryRegion) {
  // 900 points in one cluster first, then 10 in each of two far clusters; 12 labels at most.
  std::vector<float> coords;
  std::vector<std::string> labels;
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> jitter(-1.0f, 1.0f);
  auto add = [&](float cx, float cy, int count) {
    for (int k = 0; k < count; ++k) {
      coords.push_back(cx + jitter(rng));
      coords.push_back(cy + jitter(rng));
      labels.push_back("t" + std::to_string(labels.size()));
    }
  };
  add(0, 0, 900);
  add(30, 0, 10);
  add(0, 30, 10);
  rd::Points p;
  p.coords = coords;
  p.labels = labels;
  rd::FigureOptions o;
  o.style.max_labels = 12;
  rd::RenderResult r = rd::render_scatter(dir_ / "spread.png", p, o);
  int far_a = 0, far_b = 0;
  for (std::uint32_t i : r.panels[0].labelled) {
    far_a += i >= 900 && i < 910;
    far_b += i >= 910;
  }
  EXPECT_GE(far_a, 1);
  EXPECT_GE(far_b, 1);
  // With the caller's order (index order), labels follow it: the crowded first cluster first.
  std::vector<std::uint32_t> order(labels.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::uint32_t>(i);
  p.label_order = order;
  r = rd::render_scatter(dir_ / "ordered.png", p, o);
  const auto& labelled = r.panels[0].labelled;
  ASSERT_FALSE(labelled.empty());
  EXPECT_LT(labelled.front(), 900u);
  EXPECT_TRUE(std::is_sorted(labelled.begin(), labelled.end()));
}

// ---------------------------------------------------------------------------------------------
// Text beyond Latin: Pango with fontconfig's fallback

namespace {

// Does some installed font have every one of these characters (each may come from another font)?
bool fonts_cover(std::u32string_view chars) {
  for (char32_t c : chars) {
    FcCharSet* set = FcCharSetCreate();
    FcCharSetAddChar(set, static_cast<FcChar32>(c));
    FcPattern* pattern = FcPatternCreate();
    FcPatternAddCharSet(pattern, FC_CHARSET, set);
    FcObjectSet* objects = FcObjectSetBuild(FC_FAMILY, nullptr);
    FcFontSet* fonts = FcFontList(nullptr, pattern, objects);
    bool found = fonts != nullptr && fonts->nfont > 0;
    if (fonts != nullptr) FcFontSetDestroy(fonts);
    FcObjectSetDestroy(objects);
    FcPatternDestroy(pattern);
    FcCharSetDestroy(set);
    if (!found) return false;
  }
  return true;
}

// Ink (non-white pixels, 2x PNG) inside a label box, and a fingerprint of its pixels.
std::pair<std::size_t, std::vector<int>> ink_in(const Image& image, const rd::Box& box) {
  std::size_t ink = 0;
  std::vector<int> pixels;
  for (int y = static_cast<int>(2 * box.y0); y < static_cast<int>(2 * box.y1); ++y) {
    for (int x = static_cast<int>(2 * box.x0); x < static_cast<int>(2 * box.x1); ++x) {
      int r, g, b;
      image.rgb(x, y, r, g, b);
      if (r < 240 || g < 240 || b < 240) ++ink;
      pixels.push_back(r + g + b);
    }
  }
  return {ink, pixels};
}

// One labelled point in the middle of a small figure without legend or caption.
rd::RenderResult render_label(const fs::path& out, const std::string& label) {
  static const std::vector<float> coords = {0, 0};
  std::vector<std::string> labels = {label};
  rd::Points p;
  p.coords = coords;
  p.labels = labels;
  rd::FigureOptions o;
  o.width = o.height = 160;
  o.style.label_font_size = 9;
  return rd::render_scatter(out, p, o);
}

}  // namespace

TEST_F(RenderTest, ScriptsBeyondLatinDrawRealGlyphs) {
  if (!fonts_cover(U"日本語Приветé😀")) {
    GTEST_SKIP() << "no installed font has the CJK/Cyrillic/emoji test characters "
                    "(scripts/install-deps.sh installs fonts-droid-fallback and fonts-dejavu-core)";
  }
  std::vector<float> coords = {0, 0, 10, 0, 0, 10, 10, 10, 5, 5};
  std::vector<std::string> labels = {"日本語", "Привет", "é", "😀", " 本"};
  rd::Points p;
  p.coords = coords;
  p.labels = labels;
  rd::FigureOptions o;
  o.title = "語彙 \xC2\xB7 Словарь";
  o.legend = {{rd::categorical_color(0), "日本語のテキスト"}};
  o.caption = "トークン \xF0\x9F\x98\x80";
  for (const char* name : {"cjk.png", "cjk.svg", "cjk.pdf"}) {
    rd::RenderResult r = rd::render_scatter(dir_ / name, p, o);
    EXPECT_EQ(r.unknown_glyphs, 0u) << name;
    EXPECT_EQ(r.panels[0].labelled.size(), labels.size()) << name;
  }
  // Same input, same bytes, fallback fonts included.
  rd::render_scatter(dir_ / "again.png", p, o);
  EXPECT_EQ(read_bytes(dir_ / "cjk.png"), read_bytes(dir_ / "again.png"));

  // "日本" against two characters no font has (Pango draws hex boxes): the glyphs are counted
  // as found, and the label's pixels are real ink, different from the missing-glyph boxes.
  rd::RenderResult cjk = render_label(dir_ / "nihon.png", "日本");
  rd::RenderResult tofu = render_label(dir_ / "tofu.png", "\xF4\x8F\xBF\xBD\xF4\x8F\xBF\xBC");
  EXPECT_EQ(cjk.unknown_glyphs, 0u);
  EXPECT_EQ(tofu.unknown_glyphs, 2u);
  ASSERT_EQ(cjk.panels[0].label_boxes.size(), 1u);
  ASSERT_EQ(tofu.panels[0].label_boxes.size(), 1u);
  auto [cjk_ink, cjk_pixels] = ink_in(read_png(dir_ / "nihon.png"), cjk.panels[0].label_boxes[0]);
  auto [tofu_ink, tofu_pixels] = ink_in(read_png(dir_ / "tofu.png"), tofu.panels[0].label_boxes[0]);
  EXPECT_GT(cjk_ink, 60u);
  EXPECT_NE(cjk_pixels, tofu_pixels);
  // Label boxes are Pango's logical extents: two full-width glyphs are about 2 em wide.
  const rd::Box& box = cjk.panels[0].label_boxes[0];
  EXPECT_NEAR(box.x1 - box.x0 - 2.0, 2 * 9 * 0.8, 9 * 0.8 * 0.5);  // 9 pt font, panel < 300 pt
}

TEST_F(RenderTest, EmojiLabelsDrawRealGlyphs) {
  // Newer emoji than DejaVu's monochrome set: drawn from the emoji font that
  // scripts/install-deps.sh installs (fonts-noto-color-emoji), never as hex boxes.
  ASSERT_TRUE(fonts_cover(U"🦀🧠🫠")) << "no emoji font: run scripts/install-deps.sh";
  for (const char* name : {"emoji.png", "emoji.svg", "emoji.pdf"}) {
    const rd::RenderResult r = render_label(dir_ / name, "🦀🧠🫠");
    EXPECT_EQ(r.unknown_glyphs, 0u) << name;
  }
  const rd::RenderResult r = render_label(dir_ / "emoji2.png", " \xF0\x9F\xA6\x80 crab");
  EXPECT_EQ(r.unknown_glyphs, 0u);
  ASSERT_EQ(r.panels[0].label_boxes.size(), 1u);
  EXPECT_GT(ink_in(read_png(dir_ / "emoji2.png"), r.panels[0].label_boxes[0]).first, 30u);
}

TEST_F(RenderTest, PngIsRgbWhenOpaqueAndRgbaWhenNot) {
  // Byte 25 of a PNG is the IHDR colour type: 2 = RGB, 6 = RGBA.
  Data d = blobs(100, 2, 9);
  rd::FigureOptions o;
  o.width = 200;
  o.height = 150;
  // Renders to `name`, checks the colour type byte and that the file decodes.
  auto render_png = [&](const std::string& name, char colour_type) {
    rd::render_scatter(dir_ / name, d.points(), o);
    const std::string bytes = read_bytes(dir_ / name);
    EXPECT_GT(bytes.size(), 26u);
    if (bytes.size() > 26) {
      EXPECT_EQ(bytes[25], colour_type) << name;
    }
    Image image = read_png(dir_ / name);
    EXPECT_TRUE(image.ok) << name;
    return image;
  };
  const Image image = render_png("opaque.png", 2);
  ASSERT_TRUE(image.ok);
  EXPECT_EQ(image.width, 400);
  EXPECT_GT(image.ink(), 1000u);

  o.background = rd::Rgba{1, 1, 1, 0};
  const Image see_through = render_png("clear.png", 6);
  ASSERT_TRUE(see_through.ok);
  auto alpha_at = [&](int x, int y) {
    return see_through.data[static_cast<std::size_t>(y) * see_through.stride +
                            static_cast<std::size_t>(x) * 4 + 3];  // little-endian ARGB32
  };
  EXPECT_EQ(alpha_at(0, 0), 0);  // the margin stays transparent
  std::size_t opaque_pixels = 0;
  for (int y = 0; y < see_through.height; ++y) {
    for (int x = 0; x < see_through.width; ++x) opaque_pixels += alpha_at(x, y) == 255;
  }
  EXPECT_GT(opaque_pixels, 100u);  // the frame and the highlighted markers' outlines
}
