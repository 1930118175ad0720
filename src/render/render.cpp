// Figures with Cairo: layout (title, panels, legend, caption), markers, labels, output.
#include "render/render.hpp"

#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <cairo.h>
#include <fontconfig/fontconfig.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <numbers>

#include "io/io.hpp"

namespace tokmap::render {

namespace {

enum class Format { png, svg, pdf };

constexpr double kMaxFigurePt = 14400;   // 200 inches
constexpr double kMaxPngPixels = 32000;  // cairo's image surfaces stop at 32767

const Rgba kText = rgb(0x1A1A1A);
const Rgba kCaption = rgb(0x4D4D4D);
const Rgba kFrame = rgb(0x9A9A9A);
const Rgba kBox3d = rgb(0xCFCFCF);
const Rgba kOutline = rgb(0x1A1A1A);

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Format format_of(const fs::path& out) {
  std::string ext = lower(out.extension().string());
  if (ext == ".png") return Format::png;
  if (ext == ".svg") return Format::svg;
  if (ext == ".pdf") return Format::pdf;
  throw Error(out.string() + ": unknown figure format '" + ext + "' (use .png, .svg or .pdf)",
              ErrorKind::usage);
}

// Valid UTF-8 with control characters replaced, so cairo never enters an error state.
std::string clean_text(std::string_view in, bool keep_newlines) {
  std::string out;
  out.reserve(in.size());
  const char* replacement = "\xEF\xBF\xBD";
  std::size_t i = 0;
  while (i < in.size()) {
    auto c = static_cast<unsigned char>(in[i]);
    if (c < 0x80) {
      if (c == '\n' && keep_newlines) {
        out += '\n';
      } else if (c == '\t' || c == '\n' || c == '\r') {
        out += ' ';
      } else if (c < 0x20 || c == 0x7F) {
        out += replacement;
      } else {
        out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    std::size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
    bool ok = len > 0 && c <= 0xF4 && i + len <= in.size();
    std::uint32_t cp = 0;
    if (ok) {
      cp = c & (0xFF >> (len + 1));
      for (std::size_t k = 1; k < len; ++k) {
        auto d = static_cast<unsigned char>(in[i + k]);
        if ((d & 0xC0) != 0x80) {
          ok = false;
          break;
        }
        cp = (cp << 6) | (d & 0x3F);
      }
    }
    if (ok) {
      static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
      ok = cp >= kMin[len] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF) &&
           !(cp >= 0x80 && cp < 0xA0);
    }
    if (ok) {
      out.append(in.substr(i, len));
      i += len;
    } else {
      out += replacement;
      ++i;
    }
  }
  return out;
}

std::string trim_spaces(std::string s) {
  std::size_t b = s.find_first_not_of(' ');
  if (b == std::string::npos) return {};
  std::size_t e = s.find_last_not_of(' ');
  return s.substr(b, e - b + 1);
}

// ---------------------------------------------------------------------------------------------
// Cairo plumbing

struct SurfaceDeleter {
  void operator()(cairo_surface_t* s) const { cairo_surface_destroy(s); }
};
struct ContextDeleter {
  void operator()(cairo_t* c) const { cairo_destroy(c); }
};
using SurfacePtr = std::unique_ptr<cairo_surface_t, SurfaceDeleter>;
using ContextPtr = std::unique_ptr<cairo_t, ContextDeleter>;

cairo_status_t append_to_string(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

void check(cairo_status_t status, const fs::path& out) {
  if (status != CAIRO_STATUS_SUCCESS) {
    throw Error(out.string() + ": cannot render figure: " + cairo_status_to_string(status));
  }
}

#if defined(__SANITIZE_ADDRESS__)
#define TOKMAP_RENDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TOKMAP_RENDER_ASAN 1
#endif
#endif

// cairo and fontconfig keep font caches for the life of the process; LeakSanitizer reports
// them at exit. Sanitizer builds free them from an exit handler, which runs before the leak
// check (registered earlier, so run later). Release builds leave them to the OS.
void free_caches_at_exit() {
#ifdef TOKMAP_RENDER_ASAN
  static const bool registered = [] {
    std::atexit([] {
      cairo_debug_reset_static_data();
      FcFini();
    });
    return true;
  }();
  (void)registered;
#endif
}

// A drawing target by format. PNG draws into an image surface; SVG and PDF stream into bytes_.
class Canvas {
 public:
  Canvas(const fs::path& out, double width, double height, double png_scale)
      : out_(out), format_(format_of(out)) {
    free_caches_at_exit();
    switch (format_) {
      case Format::png: {
        int w = static_cast<int>(std::ceil(width * png_scale));
        int h = static_cast<int>(std::ceil(height * png_scale));
        surface_.reset(cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w, h));
        break;
      }
      case Format::svg:
        surface_.reset(
            cairo_svg_surface_create_for_stream(append_to_string, &bytes_, width, height));
        break;
      case Format::pdf:
        surface_.reset(
            cairo_pdf_surface_create_for_stream(append_to_string, &bytes_, width, height));
        cairo_pdf_surface_set_metadata(surface_.get(), CAIRO_PDF_METADATA_CREATOR, "tokmap");
        break;
    }
    check(cairo_surface_status(surface_.get()), out_);
    context_.reset(cairo_create(surface_.get()));
    check(cairo_status(context_.get()), out_);
    if (format_ == Format::png) cairo_scale(context_.get(), png_scale, png_scale);

    cairo_font_options_t* font_options = cairo_font_options_create();
    // Unhinted metrics: the same layout in every format and at every scale.
    cairo_font_options_set_hint_metrics(font_options, CAIRO_HINT_METRICS_OFF);
    cairo_font_options_set_hint_style(font_options, CAIRO_HINT_STYLE_NONE);
    cairo_font_options_set_antialias(font_options, CAIRO_ANTIALIAS_GRAY);
    cairo_set_font_options(context_.get(), font_options);
    cairo_font_options_destroy(font_options);
  }

  cairo_t* cr() const { return context_.get(); }

  // Finishes the surface and writes the file atomically.
  void write() {
    check(cairo_status(context_.get()), out_);
    context_.reset();
    cairo_surface_flush(surface_.get());
    if (format_ == Format::png) {
      check(cairo_surface_write_to_png_stream(surface_.get(), append_to_string, &bytes_), out_);
    }
    cairo_surface_finish(surface_.get());
    check(cairo_surface_status(surface_.get()), out_);
    surface_.reset();
    if (format_ == Format::svg) renumber_svg_root();
    io::write_file_atomically(out_, bytes_);
  }

 private:
  // cairo names the SVG's root group after a process-wide surface counter; a fixed name makes
  // the same figure give the same bytes. The root id is never referenced.
  void renumber_svg_root() {
    const std::string prefix = "<g id=\"surface";
    std::size_t at = bytes_.find(prefix);
    if (at == std::string::npos) return;
    std::size_t begin = at + prefix.size(), end = begin;
    while (end < bytes_.size() && std::isdigit(static_cast<unsigned char>(bytes_[end]))) ++end;
    if (end == begin || bytes_.compare(end, 2, "\">") != 0) return;
    std::string id = "surface" + bytes_.substr(begin, end - begin);
    if (bytes_.find("#" + id + "\"") != std::string::npos) return;  // referenced: leave it
    bytes_.replace(begin, end - begin, "1");
  }

  fs::path out_;
  Format format_;
  std::string bytes_;
  SurfacePtr surface_;
  ContextPtr context_;
};

void set_color(cairo_t* cr, const Rgba& c) { cairo_set_source_rgba(cr, c.r, c.g, c.b, c.a); }

Rgba with_alpha(Rgba c, double a) {
  c.a = a;
  return c;
}

Rgba mix(const Rgba& a, const Rgba& b, double t) {
  return {a.r + (b.r - a.r) * t, a.g + (b.g - a.g) * t, a.b + (b.b - a.b) * t, a.a};
}

struct Font {
  std::string family;
  double size = 7;
  bool bold = false;
};

void use_font(cairo_t* cr, const Font& font) {
  cairo_select_font_face(cr, font.family.c_str(), CAIRO_FONT_SLANT_NORMAL,
                         font.bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, font.size);
}

double text_width(cairo_t* cr, const std::string& text) {
  cairo_text_extents_t e;
  cairo_text_extents(cr, text.c_str(), &e);
  return e.x_advance;
}

struct LineMetrics {
  double ascent = 0, descent = 0, height = 0;
};

LineMetrics line_metrics(cairo_t* cr) {
  cairo_font_extents_t fe;
  cairo_font_extents(cr, &fe);
  return {fe.ascent, fe.descent, fe.height};
}

// Greedy word wrap of one line of text to `width`.
std::vector<std::string> wrap(cairo_t* cr, const std::string& text, double width) {
  std::vector<std::string> lines;
  std::string line;
  std::size_t i = 0;
  while (i <= text.size()) {
    std::size_t j = text.find(' ', i);
    if (j == std::string::npos) j = text.size();
    std::string word = text.substr(i, j - i);
    std::string candidate = line.empty() ? word : line + " " + word;
    if (!line.empty() && text_width(cr, candidate) > width) {
      lines.push_back(line);
      line = word;
    } else {
      line = std::move(candidate);
    }
    i = j + 1;
  }
  lines.push_back(line);
  return lines;
}

void draw_text(cairo_t* cr, double x, double baseline, const std::string& text, const Rgba& color) {
  set_color(cr, color);
  cairo_move_to(cr, x, baseline);
  cairo_show_text(cr, text.c_str());
  cairo_new_path(cr);
}

// ---------------------------------------------------------------------------------------------
// Figure layout: title on top, panels in the middle, legend and caption at the bottom.

struct Footer {
  struct Item {
    Rgba color;
    std::string text;
    double width = 0;  // swatch + text
  };
  std::vector<std::vector<Item>> legend_lines;
  std::vector<std::string> caption_lines;
  double height = 0;
};

constexpr double kSwatch = 6.5;
constexpr double kSwatchGap = 3;
constexpr double kItemGap = 11;

Font legend_font(const Style& s) { return {s.font_family, s.caption_font_size + 0.5, false}; }
Font caption_font(const Style& s) { return {s.font_family, s.caption_font_size, false}; }
Font title_font(const Style& s) { return {s.font_family, s.title_font_size + 1.5, true}; }
Font panel_title_font(const Style& s) { return {s.font_family, s.title_font_size, false}; }

Footer layout_footer(cairo_t* cr, const FigureOptions& o, double width) {
  Footer f;
  if (!o.legend.empty()) {
    use_font(cr, legend_font(o.style));
    std::vector<Footer::Item> line;
    double used = 0;
    for (const LegendEntry& e : o.legend) {
      Footer::Item item{e.color, clean_text(e.text, false), 0};
      item.width = kSwatch + kSwatchGap + text_width(cr, item.text);
      double need = line.empty() ? item.width : used + kItemGap + item.width;
      if (!line.empty() && need > width) {
        f.legend_lines.push_back(std::move(line));
        line.clear();
        need = item.width;
      }
      line.push_back(std::move(item));
      used = need;
    }
    if (!line.empty()) f.legend_lines.push_back(std::move(line));
    f.height += 8 + static_cast<double>(f.legend_lines.size()) * line_metrics(cr).height * 1.15;
  }
  if (!o.caption.empty()) {
    use_font(cr, caption_font(o.style));
    std::string caption = clean_text(o.caption, true);
    std::size_t i = 0;
    while (i <= caption.size()) {
      std::size_t j = caption.find('\n', i);
      if (j == std::string::npos) j = caption.size();
      for (std::string& l : wrap(cr, caption.substr(i, j - i), width)) {
        f.caption_lines.push_back(std::move(l));
      }
      i = j + 1;
    }
    f.height += 6 + static_cast<double>(f.caption_lines.size()) * line_metrics(cr).height * 1.1;
  }
  return f;
}

void draw_footer(cairo_t* cr, const Footer& f, const FigureOptions& o, double top) {
  double y = top;
  double center = o.width / 2;
  if (!f.legend_lines.empty()) {
    use_font(cr, legend_font(o.style));
    LineMetrics m = line_metrics(cr);
    y += 8;
    for (const auto& line : f.legend_lines) {
      double total = 0;
      for (const auto& item : line) total += item.width;
      total += kItemGap * static_cast<double>(line.size() - 1);
      double x = center - total / 2;
      double baseline = y + m.ascent;
      double mid = baseline - m.ascent * 0.36;
      for (const auto& item : line) {
        cairo_new_path(cr);
        cairo_arc(cr, x + kSwatch / 2, mid, kSwatch / 2, 0, 2 * std::numbers::pi);
        set_color(cr, with_alpha(item.color, 1.0));
        cairo_fill_preserve(cr);
        set_color(cr, with_alpha(mix(item.color, kOutline, 0.35), 1.0));
        cairo_set_line_width(cr, 0.4);
        cairo_stroke(cr);
        draw_text(cr, x + kSwatch + kSwatchGap, baseline, item.text, kText);
        x += item.width + kItemGap;
      }
      y += m.height * 1.15;
    }
  }
  if (!f.caption_lines.empty()) {
    use_font(cr, caption_font(o.style));
    LineMetrics m = line_metrics(cr);
    y += 6;
    for (const std::string& line : f.caption_lines) {
      draw_text(cr, center - text_width(cr, line) / 2, y + m.ascent, line, kCaption);
      y += m.height * 1.1;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Panels

struct Projected {
  std::vector<double> x, y;          // figure coordinates
  std::vector<double> depth;         // 3D: 0 = farthest, 1 = nearest; empty for 2D
  std::vector<std::uint32_t> order;  // drawing order (finite points only, back to front)
};

void validate(const Points& p, const fs::path& out) {
  auto fail = [&](const std::string& what) {
    throw Error(out.string() + ": cannot render figure: " + what, ErrorKind::usage);
  };
  if (p.dims != 2 && p.dims != 3) fail("points must have 2 or 3 dimensions");
  if (p.coords.size() % static_cast<std::size_t>(p.dims) != 0) {
    fail("coordinates are not a multiple of " + std::to_string(p.dims));
  }
  std::size_t n = p.size();
  if (n > 0xFFFFFFFFu) fail("too many points");
  if (!p.colors.empty() && p.colors.size() != 1 && p.colors.size() != n) {
    fail("colours must be one per point, one for all or none");
  }
  if (!p.labels.empty() && p.labels.size() != n) fail("labels must be one per point or none");
  if (!p.emphasis.empty() && p.emphasis.size() != n) fail("emphasis must be one per point or none");
}

void validate(const FigureOptions& o, const fs::path& out) {
  auto fail = [&](const std::string& what) {
    throw Error(out.string() + ": cannot render figure: " + what, ErrorKind::usage);
  };
  if (!(o.width > 0 && o.width <= kMaxFigurePt && o.height > 0 && o.height <= kMaxFigurePt)) {
    fail("figure size must be between 0 and 14400 pt");
  }
  if (!(o.png_scale > 0 && o.width * o.png_scale <= kMaxPngPixels &&
        o.height * o.png_scale <= kMaxPngPixels)) {
    fail("PNG scale must be positive and keep the image under 32000 pixels a side");
  }
  if (!(o.margin >= 0 && o.margin * 2 < std::min(o.width, o.height))) fail("bad margin");
  const Style& s = o.style;
  for (double v : {s.label_font_size, s.title_font_size, s.caption_font_size}) {
    if (!(v > 0 && v < 200)) fail("font sizes must be between 0 and 200 pt");
  }
  if (!std::isfinite(s.point_size) || !std::isfinite(s.point_alpha) ||
      !(s.emphasis_scale > 0 && s.emphasis_scale < 100) || !std::isfinite(s.depth_cue)) {
    fail("bad point style");
  }
}

bool finite_point(const Points& p, std::size_t i) {
  const float* c = p.coords.data() + i * static_cast<std::size_t>(p.dims);
  for (int d = 0; d < p.dims; ++d) {
    if (!std::isfinite(c[d])) return false;
  }
  return true;
}

// Fixed shuffle (splitmix64) so no category is always drawn on top; same input, same picture.
void shuffle(std::vector<std::uint32_t>& v) {
  std::uint64_t state = 0x9E3779B97F4A7C15ull;
  for (std::size_t i = v.size(); i > 1; --i) {
    state += 0x9E3779B97F4A7C15ull;
    std::uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    std::swap(v[i - 1], v[z % i]);
  }
}

// Extent of the cloud around which a 3D camera turns: centre and radius of the bounding box.
struct Sphere {
  double c[3] = {0, 0, 0};
  double radius = 1;
  double lo[3] = {0, 0, 0}, hi[3] = {0, 0, 0};
};

Sphere bounding_sphere(const Points& p) {
  Sphere s;
  bool any = false;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (!finite_point(p, i)) continue;
    const float* c = p.coords.data() + i * 3;
    for (int d = 0; d < 3; ++d) {
      s.lo[d] = any ? std::min(s.lo[d], double(c[d])) : c[d];
      s.hi[d] = any ? std::max(s.hi[d], double(c[d])) : c[d];
    }
    any = true;
  }
  for (int d = 0; d < 3; ++d) s.c[d] = (s.lo[d] + s.hi[d]) / 2;
  double r2 = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (!finite_point(p, i)) continue;
    const float* c = p.coords.data() + i * 3;
    double q = 0;
    for (int d = 0; d < 3; ++d) q += (c[d] - s.c[d]) * (c[d] - s.c[d]);
    r2 = std::max(r2, q);
  }
  s.radius = r2 > 0 ? std::sqrt(r2) : 1;
  return s;
}

struct CameraBasis {
  double right[3], up[3], toward[3];  // screen x, screen y, toward the viewer
};

CameraBasis basis(const Camera& cam) {
  double a = cam.azimuth_deg * std::numbers::pi / 180;
  double e = std::clamp(cam.elevation_deg, -90.0, 90.0) * std::numbers::pi / 180;
  CameraBasis b{{-std::sin(a), std::cos(a), 0},
                {-std::sin(e) * std::cos(a), -std::sin(e) * std::sin(a), std::cos(e)},
                {std::cos(e) * std::cos(a), std::cos(e) * std::sin(a), std::sin(e)}};
  return b;
}

// Without a caller's order, labels go round-robin over a grid of cells (one label per cell,
// then a second, ...), cells in a fixed shuffled order: every region of the map gets labels
// before any region gets many. Highlighted points stay first.
void spread_spatially(std::vector<std::uint32_t>& priority, const Points& p,
                      const std::vector<double>& fx, const std::vector<double>& fy, double cell) {
  std::size_t n = p.size();
  std::size_t first = 0;
  while (first < priority.size() && p.emphasis.size() == n && p.emphasis[priority[first]] != 0) {
    ++first;
  }
  if (priority.size() - first < 2 || !(cell > 0)) return;
  std::vector<std::pair<std::int64_t, std::uint32_t>> keyed;  // (cell key, point)
  keyed.reserve(priority.size() - first);
  for (std::size_t k = first; k < priority.size(); ++k) {
    std::uint32_t i = priority[k];
    auto cx = static_cast<std::int64_t>(std::floor(fx[i] / cell));
    auto cy = static_cast<std::int64_t>(std::floor(fy[i] / cell));
    keyed.push_back({cy * 100003 + cx, i});
  }
  std::stable_sort(keyed.begin(), keyed.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  // Cells in a fixed shuffled order; within a cell, the points keep their order.
  std::vector<std::pair<std::size_t, std::size_t>> cells;  // [begin, end) in keyed
  for (std::size_t k = 0; k < keyed.size();) {
    std::size_t e = k;
    while (e < keyed.size() && keyed[e].first == keyed[k].first) ++e;
    cells.push_back({k, e});
    k = e;
  }
  std::vector<std::uint32_t> cell_order(cells.size());
  for (std::size_t c = 0; c < cells.size(); ++c) cell_order[c] = static_cast<std::uint32_t>(c);
  shuffle(cell_order);
  std::size_t out = first;
  for (std::size_t round = 0; out < priority.size(); ++round) {
    for (std::uint32_t c : cell_order) {
      if (cells[c].first + round < cells[c].second) {
        priority[out++] = keyed[cells[c].first + round].second;
      }
    }
  }
}

struct PanelInput {
  const Points* points = nullptr;
  std::string title;
  Camera camera;
};

double auto_point_size(std::size_t n, double side) {
  double d = 10.0 * std::pow(static_cast<double>(std::max<std::size_t>(n, 1)), -0.2);
  d = std::clamp(d, 1.0, 6.0);
  return d * std::clamp(side / 380.0, 0.65, 1.0);
}

double auto_alpha(std::size_t n) {
  double a = 0.9 - 0.16 * std::log10(static_cast<double>(std::max<std::size_t>(n, 100)) / 100.0);
  return std::clamp(a, 0.35, 0.9);
}

// Draws one panel inside `cell` (title on top, frame below) and returns its layout. With
// `fill_cell` the frame is the whole cell (grids: every panel the same size); otherwise it hugs
// the data.
PanelLayout draw_panel(cairo_t* cr, const PanelInput& in, const Box& cell, const Style& style,
                       bool fill_cell) {
  const Points& p = *in.points;
  const std::size_t n = p.size();
  PanelLayout layout;

  Box area = cell;
  std::string title = clean_text(in.title, false);
  if (!title.empty()) {
    Font f = panel_title_font(style);
    use_font(cr, f);
    LineMetrics m = line_metrics(cr);
    area.y0 += m.height + 3;
  }
  double aw = std::max(area.x1 - area.x0, 1.0), ah = std::max(area.y1 - area.y0, 1.0);

  // Projection to plane coordinates (u, v), v up.
  std::vector<double> u(n), v(n), depth;
  std::vector<std::uint32_t> order;
  order.reserve(n);
  double ulo = 0, uhi = 0, vlo = 0, vhi = 0;
  Sphere sphere;
  CameraBasis cam{};
  if (p.dims == 3) {
    sphere = bounding_sphere(p);
    cam = basis(in.camera);
    depth.assign(n, 0.5);
    for (std::size_t i = 0; i < n; ++i) {
      if (!finite_point(p, i)) continue;
      const float* c = p.coords.data() + i * 3;
      double q[3] = {c[0] - sphere.c[0], c[1] - sphere.c[1], c[2] - sphere.c[2]};
      u[i] = q[0] * cam.right[0] + q[1] * cam.right[1] + q[2] * cam.right[2];
      v[i] = q[0] * cam.up[0] + q[1] * cam.up[1] + q[2] * cam.up[2];
      double t = q[0] * cam.toward[0] + q[1] * cam.toward[1] + q[2] * cam.toward[2];
      depth[i] = std::clamp((t / sphere.radius + 1) / 2, 0.0, 1.0);
      order.push_back(static_cast<std::uint32_t>(i));
    }
    // Square frame the size of the bounding sphere: every view of the cloud has one scale.
    ulo = vlo = -sphere.radius;
    uhi = vhi = sphere.radius;
    std::stable_sort(order.begin(), order.end(),
                     [&](std::uint32_t a, std::uint32_t b) { return depth[a] < depth[b]; });
  } else {
    bool any = false;
    for (std::size_t i = 0; i < n; ++i) {
      if (!finite_point(p, i)) continue;
      u[i] = p.coords[2 * i];
      v[i] = p.coords[2 * i + 1];
      ulo = any ? std::min(ulo, u[i]) : u[i];
      uhi = any ? std::max(uhi, u[i]) : u[i];
      vlo = any ? std::min(vlo, v[i]) : v[i];
      vhi = any ? std::max(vhi, v[i]) : v[i];
      any = true;
      order.push_back(static_cast<std::uint32_t>(i));
    }
    shuffle(order);
    // Keep a degenerate cloud (one point, a line) from giving a needle-thin frame.
    double span = std::max(uhi - ulo, vhi - vlo);
    if (!(span > 0)) span = 1;
    double min_side = span * 0.3;
    if (uhi - ulo < min_side) {
      double c = (ulo + uhi) / 2;
      ulo = c - min_side / 2;
      uhi = c + min_side / 2;
    }
    if (vhi - vlo < min_side) {
      double c = (vlo + vhi) / 2;
      vlo = c - min_side / 2;
      vhi = c + min_side / 2;
    }
  }
  // Emphasised points are drawn last, on top (in 3D still back to front among themselves).
  if (p.emphasis.size() == n) {
    std::stable_partition(order.begin(), order.end(),
                          [&](std::uint32_t i) { return p.emphasis[i] == 0; });
  }

  // Equal aspect ratio; the frame hugs the data plus a margin for markers and labels.
  double pad = 0.035 * std::max(uhi - ulo, vhi - vlo);
  double du = uhi - ulo + 2 * pad, dv = vhi - vlo + 2 * pad;
  double scale = std::min(aw / du, ah / dv);
  double fw = fill_cell ? aw : du * scale, fh = fill_cell ? ah : dv * scale;
  Box frame{area.x0 + (aw - fw) / 2, area.y0 + (ah - fh) / 2, 0, 0};
  frame.x1 = frame.x0 + fw;
  frame.y1 = frame.y0 + fh;
  layout.frame = frame;
  layout.scale = scale;
  layout.offset_x = (frame.x0 + frame.x1) / 2 - (ulo + uhi) / 2 * scale;
  layout.offset_y = (frame.y0 + frame.y1) / 2 + (vlo + vhi) / 2 * scale;

  if (!title.empty()) {
    use_font(cr, panel_title_font(style));
    LineMetrics m = line_metrics(cr);
    double cx = (frame.x0 + frame.x1) / 2;
    draw_text(cr, cx - text_width(cr, title) / 2, frame.y0 - 3 - m.descent, title, kText);
  }

  // Markers.
  double side = std::min(fw, fh);
  double size = style.point_size > 0 ? style.point_size : auto_point_size(order.size(), side);
  double alpha =
      style.point_alpha > 0 ? std::min(style.point_alpha, 1.0) : auto_alpha(order.size());
  double cue = std::clamp(style.depth_cue, 0.0, 1.0);
  auto color_of = [&](std::size_t i) {
    if (p.colors.size() == n && n > 0) return p.colors[i];
    if (p.colors.size() == 1) return p.colors[0];
    return categorical_color(0);
  };
  std::vector<double> fx(n), fy(n), radius(n, 0);
  for (std::uint32_t i : order) {
    fx[i] = layout.offset_x + scale * u[i];
    fy[i] = layout.offset_y - scale * v[i];
  }

  cairo_save(cr);
  cairo_rectangle(cr, frame.x0, frame.y0, fw, fh);
  cairo_clip(cr);
  if (p.dims == 3 && style.box_3d && !order.empty()) {
    // Faint bounding box: gives the eye the orientation of the view.
    double corner[8][2];
    for (int k = 0; k < 8; ++k) {
      double q[3] = {(k & 1 ? sphere.hi[0] : sphere.lo[0]) - sphere.c[0],
                     (k & 2 ? sphere.hi[1] : sphere.lo[1]) - sphere.c[1],
                     (k & 4 ? sphere.hi[2] : sphere.lo[2]) - sphere.c[2]};
      double cu = q[0] * cam.right[0] + q[1] * cam.right[1] + q[2] * cam.right[2];
      double cv = q[0] * cam.up[0] + q[1] * cam.up[1] + q[2] * cam.up[2];
      corner[k][0] = layout.offset_x + scale * cu;
      corner[k][1] = layout.offset_y - scale * cv;
    }
    // Only the edges of the three faces turned away from the viewer (an open box, as in most
    // 3D plots): the full wireframe reads both ways (Necker cube).
    auto back_face = [&](int axis, bool high) {
      return high ? cam.toward[axis] < -1e-9 : cam.toward[axis] > 1e-9;
    };
    set_color(cr, kBox3d);
    cairo_set_line_width(cr, 0.5);
    for (int a = 0; a < 8; ++a) {
      for (int axis = 0; axis < 3; ++axis) {
        int bit = 1 << axis;
        if (a & bit) continue;
        int b = a | bit;
        bool back = false;
        for (int other = 0; other < 3; ++other) {
          if (other != axis && back_face(other, (a >> other) & 1)) back = true;
        }
        if (!back) continue;
        cairo_move_to(cr, corner[a][0], corner[a][1]);
        cairo_line_to(cr, corner[b][0], corner[b][1]);
      }
    }
    cairo_stroke(cr);
  }

  bool edges = size >= 2.5;
  cairo_set_line_width(cr, std::min(0.35, size * 0.08));
  for (std::uint32_t i : order) {
    bool emph = p.emphasis.size() == n && p.emphasis[i] != 0;
    Rgba c = color_of(i);
    double d = size;
    double a = alpha * c.a;
    if (emph) {
      d = std::max(size * style.emphasis_scale, 3.5);  // visible even among 100k tiny points
      a = c.a;
    }
    if (p.dims == 3 && cue > 0) {
      double far = 1 - depth[i];
      c = mix(c, Rgba{1, 1, 1, 1}, cue * 0.6 * far);
      d *= 1 - cue * 0.45 * far;
    }
    radius[i] = d / 2;
    cairo_new_path(cr);
    cairo_arc(cr, fx[i], fy[i], d / 2, 0, 2 * std::numbers::pi);
    set_color(cr, with_alpha(c, a));
    if (emph) {
      cairo_fill_preserve(cr);
      cairo_save(cr);
      cairo_set_line_width(cr, std::clamp(d * 0.12, 0.5, 0.9));
      set_color(cr, kOutline);
      cairo_stroke(cr);
      cairo_restore(cr);
    } else if (edges) {
      cairo_fill_preserve(cr);
      set_color(cr, Rgba{1, 1, 1, 0.7 * a});
      cairo_stroke(cr);
    } else {
      cairo_fill(cr);
    }
  }
  cairo_restore(cr);

  // Labels.
  if (style.labels && p.labels.size() == n && n > 0 && style.max_labels > 0) {
    double font_size = style.label_font_size * std::clamp(side / 300.0, 0.8, 1.0);
    Font regular{style.font_family, font_size, false};
    Font bold{style.font_family, font_size + 0.5, true};
    use_font(cr, regular);
    LineMetrics mr = line_metrics(cr);
    use_font(cr, bold);
    LineMetrics mb = line_metrics(cr);
    constexpr double kHalo = 1.0;  // box padding for the halo
    LabelOptions lo;
    lo.max_labels = style.max_labels;
    std::size_t max_attempts = std::max<std::size_t>(4000, 20 * style.max_labels);
    lo.max_attempts = max_attempts;

    std::vector<std::uint32_t> priority = label_priority(p);
    if (p.label_order.empty()) spread_spatially(priority, p, fx, fy, 4 * mr.height);
    std::vector<LabelRequest> requests;
    std::vector<std::uint32_t> request_point;
    std::vector<std::string> texts;
    requests.reserve(std::min(priority.size(), max_attempts));
    bool current_bold = true;
    for (std::uint32_t i : priority) {
      if (requests.size() >= max_attempts) break;
      if (!finite_point(p, i)) continue;
      std::string text = trim_spaces(clean_text(p.labels[i], false));
      if (text.empty()) continue;
      bool emph = p.emphasis.size() == n && p.emphasis[i] != 0;
      if (emph != current_bold) {
        use_font(cr, emph ? bold : regular);
        current_bold = emph;
      }
      const LineMetrics& m = emph ? mb : mr;
      double w = text_width(cr, text) + 2 * kHalo;
      double h = m.ascent + m.descent * 0.6 + 2 * kHalo;
      requests.push_back({fx[i], fy[i], w, h, radius[i]});
      request_point.push_back(i);
      texts.push_back(std::move(text));
    }
    std::vector<float> obstacles;
    obstacles.reserve(order.size() * 2);
    for (std::uint32_t i : order) {
      obstacles.push_back(static_cast<float>(fx[i]));
      obstacles.push_back(static_cast<float>(fy[i]));
    }
    Box bounds{frame.x0 + 1, frame.y0 + 1, frame.x1 - 1, frame.y1 - 1};
    std::vector<PlacedLabel> placed = place_labels(requests, bounds, lo, obstacles);

    cairo_save(cr);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    cairo_set_line_width(cr, 2.2);
    current_bold = true;
    use_font(cr, bold);
    for (const PlacedLabel& pl : placed) {
      std::uint32_t i = request_point[pl.request];
      bool emph = p.emphasis.size() == n && p.emphasis[i] != 0;
      if (emph != current_bold) {
        use_font(cr, emph ? bold : regular);
        current_bold = emph;
      }
      const LineMetrics& m = emph ? mb : mr;
      // Halo from the outline; the text itself as glyphs (selectable text in PDF and SVG).
      double x = pl.box.x0 + kHalo, baseline = pl.box.y0 + kHalo + m.ascent;
      cairo_new_path(cr);
      cairo_move_to(cr, x, baseline);
      cairo_text_path(cr, texts[pl.request].c_str());
      set_color(cr, Rgba{1, 1, 1, 0.85});
      cairo_stroke(cr);
      draw_text(cr, x, baseline, texts[pl.request], emph ? Rgba{0, 0, 0, 1} : kText);
      layout.labelled.push_back(i);
      layout.label_boxes.push_back(pl.box);
    }
    cairo_restore(cr);
  }

  // Thin frame, no ticks: t-SNE axes carry no meaning. 3D panels have their box instead.
  if (p.dims == 3 && style.box_3d) return layout;
  cairo_new_path(cr);
  cairo_rectangle(cr, frame.x0, frame.y0, fw, fh);
  set_color(cr, kFrame);
  cairo_set_line_width(cr, 0.6);
  cairo_stroke(cr);
  return layout;
}

// Chooses the column count that gives the largest square panels in the area.
int choose_columns(std::size_t count, double width, double height, double title_height) {
  int best = 1;
  double best_side = -1;
  for (std::size_t cols = 1; cols <= count; ++cols) {
    std::size_t rows = (count + cols - 1) / cols;
    double side = std::min(width / static_cast<double>(cols),
                           height / static_cast<double>(rows) - title_height);
    if (side > best_side + 1e-9) {
      best_side = side;
      best = static_cast<int>(cols);
    }
  }
  return best;
}

RenderResult render_figure(const fs::path& out, std::span<const PanelInput> panels,
                           const FigureOptions& options) {
  validate(options, out);
  for (const PanelInput& in : panels) validate(*in.points, out);
  Canvas canvas(out, options.width, options.height, options.png_scale);
  cairo_t* cr = canvas.cr();
  const Style& style = options.style;

  set_color(cr, options.background);
  cairo_paint(cr);

  double m = options.margin;
  double inner_w = options.width - 2 * m;
  Box area{m, m, options.width - m, options.height - m};

  std::string title = clean_text(options.title, false);
  if (!title.empty()) {
    use_font(cr, title_font(style));
    LineMetrics lm = line_metrics(cr);
    draw_text(cr, options.width / 2 - text_width(cr, title) / 2, area.y0 + lm.ascent, title, kText);
    area.y0 += lm.height + 6;
  }
  Footer footer = layout_footer(cr, options, inner_w);
  area.y1 -= footer.height;
  if (area.y1 - area.y0 < 20) {
    throw Error(
        out.string() + ": cannot render figure: legend and caption leave no room for the plot",
        ErrorKind::usage);
  }

  RenderResult result;
  std::size_t count = panels.size();
  if (count == 1) {
    result.panels.push_back(draw_panel(cr, panels[0], area, style, false));
  } else if (count > 1) {
    bool titles = std::any_of(panels.begin(), panels.end(),
                              [](const PanelInput& p) { return !p.title.empty(); });
    use_font(cr, panel_title_font(style));
    double title_h = titles ? line_metrics(cr).height + 3 : 0;
    constexpr double kGap = 10;
    int cols = options.columns > 0 ? std::min<int>(options.columns, static_cast<int>(count))
                                   : choose_columns(count, area.x1 - area.x0 + kGap,
                                                    area.y1 - area.y0 + kGap, title_h);
    std::size_t rows = (count + cols - 1) / cols;
    double cw = (area.x1 - area.x0 - kGap * (cols - 1)) / cols;
    double ch =
        (area.y1 - area.y0 - kGap * static_cast<double>(rows - 1)) / static_cast<double>(rows);
    if (cw < 10 || ch < 10 + title_h) {
      throw Error(out.string() + ": cannot render figure: too many panels for the figure size",
                  ErrorKind::usage);
    }
    for (std::size_t k = 0; k < count; ++k) {
      std::size_t r = k / cols, c = k % cols;
      Box cell{area.x0 + static_cast<double>(c) * (cw + kGap),
               area.y0 + static_cast<double>(r) * (ch + kGap), 0, 0};
      cell.x1 = cell.x0 + cw;
      cell.y1 = cell.y0 + ch;
      result.panels.push_back(draw_panel(cr, panels[k], cell, style, true));
    }
  }
  draw_footer(cr, footer, options, area.y1);
  canvas.write();
  return result;
}

std::string format_degrees(double v) {
  double r = std::round(v * 10) / 10;
  std::string s = std::to_string(r);
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.') s.pop_back();
  if (s == "-0") s = "0";
  return s + "\xC2\xB0";
}

}  // namespace

std::vector<Camera> default_views(double elevation_deg) {
  return {{30, elevation_deg}, {120, elevation_deg}, {210, elevation_deg}, {300, elevation_deg}};
}

RenderResult render_scatter(const fs::path& out, const Points& points, const FigureOptions& options,
                            const Camera& camera) {
  PanelInput in{&points, {}, camera};
  return render_figure(out, std::span<const PanelInput>(&in, 1), options);
}

RenderResult render_grid(const fs::path& out, std::span<const Panel> panels,
                         const FigureOptions& options) {
  std::vector<PanelInput> inputs;
  inputs.reserve(panels.size());
  for (const Panel& p : panels) inputs.push_back({&p.points, p.title, p.camera});
  return render_figure(out, inputs, options);
}

RenderResult render_views(const fs::path& out, const Points& points,
                          std::span<const Camera> cameras, const FigureOptions& options) {
  if (points.dims != 3) {
    throw Error(out.string() + ": cannot render figure: 3D views need (n, 3) points",
                ErrorKind::usage);
  }
  std::vector<Camera> views(cameras.begin(), cameras.end());
  if (views.empty()) views = default_views();
  std::vector<PanelInput> inputs;
  for (const Camera& c : views) {
    inputs.push_back({&points,
                      "azimuth " + format_degrees(c.azimuth_deg) + " \xC2\xB7 elevation " +
                          format_degrees(c.elevation_deg),
                      c});
  }
  return render_figure(out, inputs, options);
}

}  // namespace tokmap::render
