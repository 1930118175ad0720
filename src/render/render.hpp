#pragma once
// Static figures with Cairo: 2D scatter maps with de-cluttered labels, small-multiples grids,
// fixed 3D views, legends and captions, written as PNG (2x), SVG or PDF by file extension.
// Text is laid out with Pango: characters the font family lacks (CJK, emoji, other scripts)
// come from any installed font that has them (fontconfig's fallback).
//
// render knows points, labels and colours only: plain arrays in, files out. Every output is
// rendered to memory and written atomically (temp file + rename). Errors are tokmap::Error and
// name the output path; nothing here prints.
//
// Units: figure sizes, fonts and marker sizes are in points (1/72 inch). Coordinates of a
// figure's layout (RenderResult) are in points from the top-left corner, y pointing down.
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace tokmap::render {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Colours and palettes (shared with the HTML report, so both show the same colours)

struct Rgba {
  double r = 0, g = 0, b = 0, a = 1;  // 0..1, straight (not premultiplied) alpha
  bool operator==(const Rgba&) const = default;
};

Rgba rgb(std::uint32_t hex, double alpha = 1.0);  // rgb(0xE69F00)
Rgba parse_hex(std::string_view text);            // "#RRGGBB" or "#RRGGBBAA"; throws on bad text
std::string to_hex(const Rgba& color);            // "#rrggbb" (alpha dropped)

// Colour-blind-safe categorical palette: Okabe-Ito in the order blue, orange, bluish green,
// vermillion, reddish purple, sky blue, yellow, black (the report page's order); index >= 8
// repeats the 8 hues with alternately darker and lighter variants (deterministic, unbounded).
Rgba categorical_color(std::size_t index);
std::string palette_hex(std::size_t index);  // to_hex(categorical_color(index))
std::vector<Rgba> categorical_palette(std::size_t count);

// Continuous colour maps: 256-entry lookup tables identical to matplotlib's.
enum class ColorMap { viridis, cividis };
const std::array<std::uint32_t, 256>& colormap_table(ColorMap map);  // 0xRRGGBB entries
Rgba colormap_color(ColorMap map, double t);                         // t in [0, 1], clamped
std::string colormap_hex(ColorMap map, double t);

// ---------------------------------------------------------------------------------------------
// Inputs

// One point cloud. Spans must outlive the render call.
struct Points {
  int dims = 2;                                // 2, or 3 for 3D panels
  std::span<const float> coords;               // (n, dims) row-major; non-finite points are skipped
  std::span<const Rgba> colors;                // n, 1 (all points) or empty (categorical_color(0))
  std::span<const std::string> labels;         // n or empty; drawn trimmed; "" = no label
  std::span<const std::uint8_t> emphasis;      // n or empty; nonzero = highlighted (larger,
                                               // outlined, drawn on top, labelled first)
  std::span<const std::uint32_t> label_order;  // label priority, best first; empty = spread
                                               // over the map (round-robin over regions).
                                               // Highlighted points always go first.
  std::size_t size() const { return dims > 0 ? coords.size() / static_cast<std::size_t>(dims) : 0; }
};

// Orthographic camera for 3D panels; z is up. Azimuth turns around z, elevation tilts.
struct Camera {
  double azimuth_deg = 30;
  double elevation_deg = 20;
};
// Four views around the cloud: azimuth 30, 120, 210, 300 at the given elevation.
std::vector<Camera> default_views(double elevation_deg = 20);

struct Panel {
  std::string title;  // e.g. "layer 3"
  Points points;
  Camera camera;  // used when points.dims == 3
};

struct LegendEntry {
  Rgba color;
  std::string text;
};

struct Style {
  double point_size = 0;   // marker diameter (pt); <= 0: from the number of points
  double point_alpha = 0;  // <= 0: from the number of points
  double emphasis_scale = 1.8;
  bool labels = true;
  std::size_t max_labels = 150;  // per panel
  double label_font_size = 7;
  double title_font_size = 9.5;
  double caption_font_size = 7.5;
  std::string font_family = "DejaVu Sans";  // a fontconfig family; others fill in missing glyphs
  double depth_cue = 0.65;  // 3D: 0 = none, 1 = farthest points fade to white / shrink most
  bool box_3d = true;       // 3D: faint wireframe of the bounding box
};

struct FigureOptions {
  double width = 504;               // pt (7 in)
  double height = 432;              // pt (6 in)
  double png_scale = 2;             // PNG pixels per point
  double margin = 14;               // pt around everything
  std::string title;                // above the plot(s); optional
  std::vector<LegendEntry> legend;  // shared legend under the plot(s)
  std::string caption;              // under the legend; '\n' separates lines, long lines wrap
  int columns = 0;                  // grids: 0 = chosen from the panel count
  Rgba background{1, 1, 1, 1};
  Style style;
};

// ---------------------------------------------------------------------------------------------
// Label placement (exposed for tests and for callers that lay out their own figures)

struct Box {
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;  // x0 <= x1, y0 <= y1
  bool intersects(const Box& o) const { return x0 < o.x1 && o.x0 < x1 && y0 < o.y1 && o.y0 < y1; }
  bool inside(const Box& o) const { return x0 >= o.x0 && y0 >= o.y0 && x1 <= o.x1 && y1 <= o.y1; }
};

struct LabelRequest {
  double x = 0, y = 0;           // anchor (the point's centre)
  double width = 0, height = 0;  // text box size
  double radius = 0;             // marker radius: the label keeps this far from the anchor
};

struct PlacedLabel {
  std::size_t request = 0;  // index into the requests
  Box box;
};

struct LabelOptions {
  std::size_t max_labels = 150;
  double gap = 1.5;              // between marker and label box
  std::size_t max_attempts = 0;  // requests tried at most; 0 = max(4000, 20 * max_labels)
};

// Tries requests in order (best first). Each gets the first of: right, left, above, below and
// the four diagonals that stays inside `bounds`, overlaps no placed label and no placed label's
// marker; among those it prefers the one covering the fewest `obstacles` ((m, 2) points, e.g.
// all markers). A label with no free position is skipped. Placed labels come back in placement
// order; their boxes are pairwise disjoint and inside `bounds`. Uses a uniform grid: O(1) per
// test.
std::vector<PlacedLabel> place_labels(std::span<const LabelRequest> requests, const Box& bounds,
                                      const LabelOptions& options = {},
                                      std::span<const float> obstacles = {});

// Label priority of a point set: highlighted points first, then the others, each group in
// label_order (empty: index order; figures then spread the others over the map).
std::vector<std::uint32_t> label_priority(const Points& points);

// ---------------------------------------------------------------------------------------------
// Figures. The format follows the extension of `out`: .png (png_scale x), .svg, .pdf.

struct PanelLayout {
  Box frame;                                     // the panel's plot frame
  double scale = 1, offset_x = 0, offset_y = 0;  // 2D: figure = (offset_x + scale * x,
                                                 //             offset_y - scale * y)
  std::vector<std::uint32_t> labelled;           // points whose label was drawn, in placement order
  std::vector<Box> label_boxes;                  // their boxes
};

struct RenderResult {
  std::vector<PanelLayout> panels;
  std::size_t unknown_glyphs = 0;  // characters drawn (labels, titles, legend, caption) that no
                                   // installed font has: they show as hex boxes
};

// One 2D (or 3D, with `camera`) scatter filling the figure.
RenderResult render_scatter(const fs::path& out, const Points& points,
                            const FigureOptions& options = {}, const Camera& camera = {});

// Small multiples: panels in rows and columns, each with its own title and scale; the legend
// and caption are shared.
RenderResult render_grid(const fs::path& out, std::span<const Panel> panels,
                         const FigureOptions& options = {});

// A 3D point cloud ((n, 3)) seen from several cameras (default_views() if empty), as a grid.
// All views share one scale so the cloud keeps its size while turning.
RenderResult render_views(const fs::path& out, const Points& points,
                          std::span<const Camera> cameras = {}, const FigureOptions& options = {});

}  // namespace tokmap::render
