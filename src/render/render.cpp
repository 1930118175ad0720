// Figures with Cairo, text with Pango: layout (title, panels, legend, caption), markers, labels,
// output.
#include "render/render.hpp"

#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <cairo.h>
#include <fontconfig/fontconfig.h>
#include <pango/pangocairo.h>
#include <png.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <numbers>
#include <unordered_map>

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

// Pango, cairo and fontconfig keep font caches for the life of the process; LeakSanitizer reports
// them at exit. Sanitizer builds free them from an exit handler, which runs before the leak
// check (registered earlier, so run later). Release builds leave them to the OS.
void free_caches_at_exit() {
#ifdef TOKMAP_RENDER_ASAN
  static const bool registered = [] {
    std::atexit([] {
      pango_cairo_font_map_set_default(nullptr);  // this thread's; other threads' die with them
      cairo_debug_reset_static_data();
      FcFini();
    });
    return true;
  }();
  (void)registered;
#endif
}

// ---------------------------------------------------------------------------------------------
// PNG encoding. cairo_surface_write_to_png() lets libpng try every row filter at zlib's default
// level, which takes longer than drawing the figure. A figure is mostly flat background with
// antialiased shapes: unfiltered rows at level 3 give files about as small (rows repeat, so
// deflate finds them) several times faster. An opaque image is written as RGB, not RGBA.

void png_write_to_string(png_structp png, png_bytep data, png_size_t length) {
  static_cast<std::string*>(png_get_io_ptr(png))
      ->append(reinterpret_cast<const char*>(data), length);
}
void png_flush_nothing(png_structp) {}

// Rows of an ARGB32 (premultiplied, native-endian) image as straight-alpha RGB(A) bytes.
void unpremultiply_row(const std::uint32_t* in, int width, bool alpha, unsigned char* out) {
  for (int x = 0; x < width; ++x) {
    std::uint32_t v = in[x];
    unsigned a = v >> 24, r = (v >> 16) & 0xFF, g = (v >> 8) & 0xFF, b = v & 0xFF;
    if (a != 0xFF && a != 0) {
      r = (r * 255 + a / 2) / a;
      g = (g * 255 + a / 2) / a;
      b = (b * 255 + a / 2) / a;
    }
    *out++ = static_cast<unsigned char>(r);
    *out++ = static_cast<unsigned char>(g);
    *out++ = static_cast<unsigned char>(b);
    if (alpha) *out++ = static_cast<unsigned char>(a);
  }
}

// libpng reports errors by longjmp: no message on stderr (render never prints), and the function
// that calls setjmp holds nothing with a destructor.
[[noreturn]] void png_error_jump(png_structp png, png_const_charp) { png_longjmp(png, 1); }
void png_warning_ignore(png_structp, png_const_charp) {}

bool write_png(png_structp png, png_infop info, std::string* out, const unsigned char* data,
               int width, int height, int stride, bool alpha, unsigned char* row) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_write_fn(png, out, png_write_to_string, png_flush_nothing);
  png_set_compression_level(png, 3);
  png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_NONE);
  png_set_IHDR(png, info, static_cast<png_uint_32>(width), static_cast<png_uint_32>(height), 8,
               alpha ? PNG_COLOR_TYPE_RGB_ALPHA : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_BASE, PNG_FILTER_TYPE_BASE);
  png_write_info(png, info);
  for (int y = 0; y < height; ++y) {
    unpremultiply_row(
        reinterpret_cast<const std::uint32_t*>(data + static_cast<std::size_t>(y) * stride), width,
        alpha, row);
    png_write_row(png, row);
  }
  png_write_end(png, info);
  return true;
}

bool encode_png(cairo_surface_t* surface, std::string& out) {
  const int width = cairo_image_surface_get_width(surface);
  const int height = cairo_image_surface_get_height(surface);
  const int stride = cairo_image_surface_get_stride(surface);
  const unsigned char* data = cairo_image_surface_get_data(surface);
  if (data == nullptr || width <= 0 || height <= 0) return false;
  bool alpha = false;
  for (int y = 0; y < height && !alpha; ++y) {
    const auto* px =
        reinterpret_cast<const std::uint32_t*>(data + static_cast<std::size_t>(y) * stride);
    for (int x = 0; x < width; ++x) {
      if ((px[x] >> 24) != 0xFF) {
        alpha = true;
        break;
      }
    }
  }
  std::vector<unsigned char> row(static_cast<std::size_t>(width) * 4);
  png_structp png =
      png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, png_error_jump, png_warning_ignore);
  if (png == nullptr) return false;
  png_infop info = png_create_info_struct(png);
  bool ok =
      info != nullptr && write_png(png, info, &out, data, width, height, stride, alpha, row.data());
  png_destroy_write_struct(&png, &info);
  return ok;
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
        // A fixed date (the reproducible-builds convention) instead of the clock's, so the same
        // input gives the same bytes.
        cairo_pdf_surface_set_metadata(surface_.get(), CAIRO_PDF_METADATA_CREATE_DATE,
                                       "2000-01-01T00:00:00Z");
        break;
    }
    check(cairo_surface_status(surface_.get()), out_);
    context_.reset(cairo_create(surface_.get()));
    check(cairo_status(context_.get()), out_);
    if (format_ == Format::png) cairo_scale(context_.get(), png_scale, png_scale);
    // Font options (unhinted, the same layout in every format) are the Typesetter's.
  }

  cairo_t* cr() const { return context_.get(); }
  Format format() const { return format_; }

  // Finishes the surface and writes the file atomically.
  void write() {
    check(cairo_status(context_.get()), out_);
    context_.reset();
    cairo_surface_flush(surface_.get());
    if (format_ == Format::png && !encode_png(surface_.get(), bytes_)) {
      throw Error(out_.string() + ": cannot render figure: PNG encoding failed");
    }
    cairo_surface_finish(surface_.get());
    check(cairo_surface_status(surface_.get()), out_);
    surface_.reset();
    if (format_ == Format::svg) renumber_svg_ids();
    io::write_file_atomically(out_, bytes_);
  }

 private:
  // cairo names SVG surfaces (the root group, recorded label halos) and images after
  // process-wide counters. Renumbering them in order of first appearance, references included,
  // makes the same figure give the same bytes. cairo's SVG has no text, only these ids, after a
  // quote or '#', followed by digits.
  void renumber_svg_ids() {
    std::string out;
    out.reserve(bytes_.size());
    std::unordered_map<std::string, std::size_t> renamed;
    std::size_t counts[2] = {0, 0};
    const std::string_view prefixes[2] = {"surface", "image"};
    std::size_t i = 0;
    while (i < bytes_.size()) {
      bool done = false;
      if (i > 0 && (bytes_[i - 1] == '"' || bytes_[i - 1] == '#')) {
        for (int k = 0; k < 2 && !done; ++k) {
          const std::string_view prefix = prefixes[k];
          if (bytes_.compare(i, prefix.size(), prefix) != 0) continue;
          std::size_t end = i + prefix.size();
          while (end < bytes_.size() && std::isdigit(static_cast<unsigned char>(bytes_[end]))) {
            ++end;
          }
          if (end == i + prefix.size()) continue;
          auto [it, added] = renamed.try_emplace(bytes_.substr(i, end - i), counts[k] + 1);
          if (added) ++counts[k];
          out += prefix;
          out += std::to_string(it->second);
          i = end;
          done = true;
        }
      }
      if (!done) out += bytes_[i++];
    }
    bytes_ = std::move(out);
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

struct LineMetrics {
  double ascent = 0, descent = 0, height = 0;
};

// One line of text shaped by Pango: the layout that draws it and its logical size, which is
// what label placement, centring and wrapping measure.
struct Line {
  PangoLayout* layout = nullptr;   // owned by the Typesetter
  double width = 0;                // logical width (pt)
  double ascent = 0, descent = 0;  // logical extent above and below the baseline (pt)
  int unknown_glyphs = 0;          // characters no installed font has (drawn as hex boxes)
};

// Text with Pango on a figure's cairo context. fontconfig picks, character by character, a font
// that has the glyph (CJK, Cyrillic, emoji, ...) when the requested family lacks it. Metrics
// are unhinted and glyph positions unrounded, in points at an identity matrix: the same layout
// in PNG (at any scale), SVG and PDF. Every (font, text) is shaped once per figure: the layout
// measured for placement is the one drawn.
//
// Pango objects are not thread-safe; pango_cairo_font_map_get_default() is one font map per
// thread, so figures may render on several threads at once.
class Typesetter {
 public:
  explicit Typesetter(cairo_t* cr) : cr_(cr) {
    context_ = pango_font_map_create_context(pango_cairo_font_map_get_default());
    cairo_font_options_t* options = cairo_font_options_create();
    cairo_font_options_set_hint_metrics(options, CAIRO_HINT_METRICS_OFF);
    cairo_font_options_set_hint_style(options, CAIRO_HINT_STYLE_NONE);
    cairo_font_options_set_antialias(options, CAIRO_ANTIALIAS_GRAY);
    pango_cairo_context_set_font_options(context_, options);
    cairo_font_options_destroy(options);
    pango_context_set_round_glyph_positions(context_, FALSE);
    // A fixed language and direction, not the user's locale: the same figure everywhere.
    pango_context_set_language(context_, pango_language_from_string("en"));
    pango_context_set_base_dir(context_, PANGO_DIRECTION_LTR);
  }
  ~Typesetter() {
    for (auto& [key, halo] : halos_) {
      if (halo.surface != nullptr) cairo_surface_destroy(halo.surface);
    }
    for (auto& [key, line] : lines_) g_object_unref(line.layout);
    for (auto& [key, desc] : fonts_) pango_font_description_free(desc);
    g_object_unref(context_);
  }
  Typesetter(const Typesetter&) = delete;
  Typesetter& operator=(const Typesetter&) = delete;

  // The font's own ascent, descent and line height (the first font of the family).
  LineMetrics metrics(const Font& font) {
    std::string key = font_key(font);
    if (auto it = metrics_.find(key); it != metrics_.end()) return it->second;
    PangoFontMetrics* m = pango_context_get_metrics(context_, description(font, key), nullptr);
    LineMetrics lm{pango_units_to_double(pango_font_metrics_get_ascent(m)),
                   pango_units_to_double(pango_font_metrics_get_descent(m)),
                   pango_units_to_double(pango_font_metrics_get_height(m))};
    pango_font_metrics_unref(m);
    if (!(lm.height > 0)) lm.height = lm.ascent + lm.descent;
    metrics_.emplace(std::move(key), lm);
    return lm;
  }

  // `text` shaped in `font` (valid UTF-8, one line); the reference stays valid for the figure.
  const Line& line(const Font& font, const std::string& text) {
    std::string font_id = font_key(font);
    std::string key = font_id;
    key += '\0';
    key += text;
    if (auto it = lines_.find(key); it != lines_.end()) return it->second;
    Line l;
    l.layout = pango_layout_new(context_);
    pango_layout_set_single_paragraph_mode(l.layout, TRUE);
    pango_layout_set_font_description(l.layout, description(font, font_id));
    pango_layout_set_text(l.layout, text.data(), static_cast<int>(text.size()));
    PangoRectangle logical;
    pango_layout_get_extents(l.layout, nullptr, &logical);
    int baseline = pango_layout_get_baseline(l.layout);
    l.width = pango_units_to_double(logical.width);
    l.ascent = pango_units_to_double(baseline - logical.y);
    l.descent = pango_units_to_double(logical.y + logical.height - baseline);
    l.unknown_glyphs = pango_layout_get_unknown_glyphs_count(l.layout);
    return lines_.emplace(std::move(key), l).first->second;
  }

  double width(const Font& font, const std::string& text) { return line(font, text).width; }

  // Draws the line with its baseline starting at (x, baseline).
  void draw(const Line& l, double x, double baseline, const Rgba& color) {
    set_color(cr_, color);
    cairo_move_to(cr_, x, baseline);
    pango_cairo_show_layout_line(cr_, pango_layout_get_line_readonly(l.layout, 0));
    cairo_new_path(cr_);
    unknown_glyphs_ += static_cast<std::size_t>(l.unknown_glyphs);
  }
  void draw(const Font& font, double x, double baseline, const std::string& text,
            const Rgba& color) {
    draw(line(font, text), x, baseline, color);
  }

  // Draws the line's glyphs with the current source (halos), counting nothing.
  void stamp(const Line& l, double x, double baseline) {
    cairo_move_to(cr_, x, baseline);
    pango_cairo_show_layout_line(cr_, pango_layout_get_line_readonly(l.layout, 0));
  }

  // Paints the line's halo, its glyph outlines stroked 2 * reach wide in white (for PDF). Each
  // distinct glyph's halo is recorded once and painted wherever the glyph appears: cairo writes
  // a recording surface used as a source once, as a form XObject, and refers to it from each
  // use, instead of writing the outline path again at every label (output several times
  // smaller and faster). Lines with missing glyphs (hex boxes) are stroked whole.
  void recorded_halo(const Line& l, double x, double baseline, double reach) {
    if (l.unknown_glyphs > 0) {
      cairo_save(cr_);
      cairo_new_path(cr_);
      outline(l, x, baseline);
      cairo_set_source_rgb(cr_, 1, 1, 1);
      cairo_set_line_join(cr_, CAIRO_LINE_JOIN_ROUND);
      cairo_set_line_width(cr_, 2 * reach);
      cairo_stroke(cr_);
      cairo_restore(cr_);
      return;
    }
    PangoLayoutLine* line = pango_layout_get_line_readonly(l.layout, 0);
    double pen = x;
    for (GSList* run = line->runs; run != nullptr; run = run->next) {
      auto* item = static_cast<PangoGlyphItem*>(run->data);
      cairo_scaled_font_t* font =
          pango_cairo_font_get_scaled_font(PANGO_CAIRO_FONT(item->item->analysis.font));
      for (int g = 0; g < item->glyphs->num_glyphs; ++g) {
        const PangoGlyphInfo& info = item->glyphs->glyphs[g];
        const GlyphHalo* halo = font ? glyph_halo(font, info.glyph, reach) : nullptr;
        if (halo != nullptr) {
          cairo_save(cr_);
          cairo_set_source_surface(
              cr_, halo->surface, pen + pango_units_to_double(info.geometry.x_offset) + halo->x,
              baseline + pango_units_to_double(info.geometry.y_offset) + halo->y);
          cairo_paint(cr_);
          cairo_restore(cr_);
        }
        pen += pango_units_to_double(info.geometry.width);
      }
    }
  }

  // Adds the glyph outlines of the line (baseline at (x, baseline)) to the current path.
  void outline(const Line& l, double x, double baseline) {
    cairo_move_to(cr_, x, baseline);
    pango_cairo_layout_line_path(cr_, pango_layout_get_line_readonly(l.layout, 0));
  }

  // Characters drawn so far that no installed font has.
  std::size_t unknown_glyphs() const { return unknown_glyphs_; }

 private:
  static std::string font_key(const Font& font) {
    char size[32];
    std::snprintf(size, sizeof size, "%.17g", font.size);
    return font.family + (font.bold ? "|b|" : "|r|") + size;
  }
  const PangoFontDescription* description(const Font& font, const std::string& key) {
    if (auto it = fonts_.find(key); it != fonts_.end()) return it->second;
    PangoFontDescription* desc = pango_font_description_new();
    pango_font_description_set_family(desc, font.family.c_str());
    pango_font_description_set_weight(desc, font.bold ? PANGO_WEIGHT_BOLD : PANGO_WEIGHT_NORMAL);
    pango_font_description_set_style(desc, PANGO_STYLE_NORMAL);
    // Absolute size: in user units (points), independent of the font map's resolution.
    pango_font_description_set_absolute_size(desc, font.size * PANGO_SCALE);
    fonts_.emplace(key, desc);
    return desc;
  }

  // The recorded halo of one glyph; null for glyphs without ink. Its top-left corner is at
  // (x, y) from the glyph origin: recording surfaces start at (0, 0), as cairo's SVG output
  // misplaces one whose extents start elsewhere.
  struct GlyphHalo {
    cairo_surface_t* surface = nullptr;
    double x = 0, y = 0;
  };
  const GlyphHalo* glyph_halo(cairo_scaled_font_t* font, PangoGlyph glyph, double reach) {
    auto key = std::make_pair(font, glyph);
    if (auto it = halos_.find(key); it != halos_.end()) {
      return it->second.surface ? &it->second : nullptr;
    }
    GlyphHalo result;
    cairo_surface_t* halo = nullptr;
    cairo_glyph_t g{glyph, 0, 0};
    cairo_text_extents_t e;
    cairo_scaled_font_glyph_extents(font, &g, 1, &e);
    if ((glyph & PANGO_GLYPH_UNKNOWN_FLAG) == 0 && e.width > 0 && e.height > 0 &&
        cairo_scaled_font_status(font) == CAIRO_STATUS_SUCCESS) {
      double pad = reach + 1;
      result.x = e.x_bearing - pad;
      result.y = e.y_bearing - pad;
      cairo_rectangle_t extents{0, 0, e.width + 2 * pad, e.height + 2 * pad};
      halo = cairo_recording_surface_create(CAIRO_CONTENT_COLOR_ALPHA, &extents);
      cairo_t* c = cairo_create(halo);
      cairo_set_source_rgb(c, 1, 1, 1);
      cairo_set_scaled_font(c, font);
      cairo_glyph_t at{glyph, -result.x, -result.y};
      cairo_glyph_path(c, &at, 1);
      cairo_set_line_join(c, CAIRO_LINE_JOIN_ROUND);
      cairo_set_line_width(c, 2 * reach);
      cairo_stroke(c);
      bool ok = cairo_status(c) == CAIRO_STATUS_SUCCESS;
      cairo_destroy(c);
      if (!ok || cairo_surface_status(halo) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(halo);
        halo = nullptr;
      }
    }
    result.surface = halo;
    auto it = halos_.emplace(key, result).first;
    return halo ? &it->second : nullptr;
  }

  cairo_t* cr_;
  PangoContext* context_ = nullptr;
  std::map<std::pair<cairo_scaled_font_t*, PangoGlyph>, GlyphHalo> halos_;
  std::unordered_map<std::string, PangoFontDescription*> fonts_;
  std::unordered_map<std::string, LineMetrics> metrics_;
  std::unordered_map<std::string, Line> lines_;
  std::size_t unknown_glyphs_ = 0;
};

// Greedy word wrap of one line of text to `width`.
std::vector<std::string> wrap(Typesetter& ts, const Font& font, const std::string& text,
                              double width) {
  std::vector<std::string> lines;
  std::string line;
  std::size_t i = 0;
  while (i <= text.size()) {
    std::size_t j = text.find(' ', i);
    if (j == std::string::npos) j = text.size();
    std::string word = text.substr(i, j - i);
    std::string candidate = line.empty() ? word : line + " " + word;
    if (!line.empty() && ts.width(font, candidate) > width) {
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

Footer layout_footer(Typesetter& ts, const FigureOptions& o, double width) {
  Footer f;
  if (!o.legend.empty()) {
    const Font font = legend_font(o.style);
    std::vector<Footer::Item> line;
    double used = 0;
    for (const LegendEntry& e : o.legend) {
      Footer::Item item{e.color, clean_text(e.text, false), 0};
      item.width = kSwatch + kSwatchGap + ts.width(font, item.text);
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
    f.height += 8 + static_cast<double>(f.legend_lines.size()) * ts.metrics(font).height * 1.15;
  }
  if (!o.caption.empty()) {
    const Font font = caption_font(o.style);
    std::string caption = clean_text(o.caption, true);
    std::size_t i = 0;
    while (i <= caption.size()) {
      std::size_t j = caption.find('\n', i);
      if (j == std::string::npos) j = caption.size();
      for (std::string& l : wrap(ts, font, caption.substr(i, j - i), width)) {
        f.caption_lines.push_back(std::move(l));
      }
      i = j + 1;
    }
    f.height += 6 + static_cast<double>(f.caption_lines.size()) * ts.metrics(font).height * 1.1;
  }
  return f;
}

void draw_footer(cairo_t* cr, Typesetter& ts, const Footer& f, const FigureOptions& o, double top) {
  double y = top;
  double center = o.width / 2;
  if (!f.legend_lines.empty()) {
    const Font font = legend_font(o.style);
    LineMetrics m = ts.metrics(font);
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
        ts.draw(font, x + kSwatch + kSwatchGap, baseline, item.text, kText);
        x += item.width + kItemGap;
      }
      y += m.height * 1.15;
    }
  }
  if (!f.caption_lines.empty()) {
    const Font font = caption_font(o.style);
    LineMetrics m = ts.metrics(font);
    y += 6;
    for (const std::string& line : f.caption_lines) {
      const Line& l = ts.line(font, line);
      ts.draw(l, center - l.width / 2, y + m.ascent, kCaption);
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
// the data. `raster`: the target is an image (PNG), where label halos are drawn by stamping.
PanelLayout draw_panel(cairo_t* cr, Typesetter& ts, const PanelInput& in, const Box& cell,
                       const Style& style, bool fill_cell, Format format) {
  const Points& p = *in.points;
  const std::size_t n = p.size();
  PanelLayout layout;

  Box area = cell;
  std::string title = clean_text(in.title, false);
  if (!title.empty()) {
    area.y0 += ts.metrics(panel_title_font(style)).height + 3;
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
    const Font font = panel_title_font(style);
    const Line& l = ts.line(font, title);
    double cx = (frame.x0 + frame.x1) / 2;
    ts.draw(l, cx - l.width / 2, frame.y0 - 3 - ts.metrics(font).descent, kText);
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
    const LineMetrics mr = ts.metrics(regular);
    constexpr double kHalo = 1.0;  // box padding for the halo
    LabelOptions lo;
    lo.max_labels = style.max_labels;
    std::size_t max_attempts = std::max<std::size_t>(4000, 20 * style.max_labels);
    lo.max_attempts = max_attempts;

    std::vector<std::uint32_t> priority = label_priority(p);
    if (p.label_order.empty()) spread_spatially(priority, p, fx, fy, 4 * mr.height);
    std::vector<LabelRequest> requests;
    std::vector<std::uint32_t> request_point;
    std::vector<const Line*> lines;  // the shaped text of each request, drawn as measured
    requests.reserve(std::min(priority.size(), max_attempts));
    for (std::uint32_t i : priority) {
      if (requests.size() >= max_attempts) break;
      if (!finite_point(p, i)) continue;
      std::string text = trim_spaces(clean_text(p.labels[i], false));
      if (text.empty()) continue;
      bool emph = p.emphasis.size() == n && p.emphasis[i] != 0;
      const Line& l = ts.line(emph ? bold : regular, text);
      double w = l.width + 2 * kHalo;
      double h = l.ascent + l.descent * 0.6 + 2 * kHalo;
      requests.push_back({fx[i], fy[i], w, h, radius[i]});
      request_point.push_back(i);
      lines.push_back(&l);
    }
    std::vector<float> obstacles;
    obstacles.reserve(order.size() * 2);
    for (std::uint32_t i : order) {
      obstacles.push_back(static_cast<float>(fx[i]));
      obstacles.push_back(static_cast<float>(fy[i]));
    }
    Box bounds{frame.x0 + 1, frame.y0 + 1, frame.x1 - 1, frame.y1 - 1};
    std::vector<PlacedLabel> placed = place_labels(requests, bounds, lo, obstacles);

    // Each label sits on a white halo (85% opaque) reaching kHaloReach beyond its glyphs, so it
    // reads over markers. Labels are pairwise disjoint, so all halos can go first, then all text.
    constexpr double kHaloReach = 1.1;
    cairo_save(cr);
    cairo_rectangle(cr, frame.x0, frame.y0, fw, fh);
    cairo_clip(cr);
    if (placed.empty()) {
      // no halos
    } else if (format == Format::svg) {
      // SVG: the outlines of all labels as one stroked path (one stroke: overlaps don't add up).
      // Not the group used below: cairo 1.16's SVG output leaks the recording surfaces behind
      // groups and recorded sources.
      cairo_new_path(cr);
      for (const PlacedLabel& pl : placed) {
        const Line& l = *lines[pl.request];
        ts.outline(l, pl.box.x0 + kHalo, pl.box.y0 + kHalo + l.ascent);
      }
      cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
      cairo_set_line_width(cr, 2 * kHaloReach);
      set_color(cr, Rgba{1, 1, 1, 0.85});
      cairo_stroke(cr);
    } else {
      cairo_push_group(cr);  // halos painted opaque, then the group at 85%: no doubling up
      set_color(cr, Rgba{1, 1, 1, 1});
      for (const PlacedLabel& pl : placed) {
        const Line& l = *lines[pl.request];
        double x = pl.box.x0 + kHalo, baseline = pl.box.y0 + kHalo + l.ascent;
        if (format == Format::png) {
          // Images: the glyphs stamped in white around two rings (16 offsets). Looks the same
          // as stroking the outlines at this size and is several times cheaper: stamping
          // reuses cached glyph masks, stroking rasterises every outline.
          for (int k = 0; k < 16; ++k) {
            double r = k < 8 ? kHaloReach : kHaloReach / 2;
            double angle = (k + (k < 8 ? 0.0 : 0.5)) * std::numbers::pi / 4;
            ts.stamp(l, x + r * std::cos(angle), baseline + r * std::sin(angle));
          }
        } else {
          // PDF: each distinct glyph's stroked outline recorded once (a form XObject) and
          // placed at every use of the glyph.
          ts.recorded_halo(l, x, baseline, kHaloReach);
        }
      }
      cairo_pop_group_to_source(cr);
      cairo_paint_with_alpha(cr, 0.85);
    }
    cairo_restore(cr);
    for (const PlacedLabel& pl : placed) {
      std::uint32_t i = request_point[pl.request];
      bool emph = p.emphasis.size() == n && p.emphasis[i] != 0;
      const Line& l = *lines[pl.request];
      ts.draw(l, pl.box.x0 + kHalo, pl.box.y0 + kHalo + l.ascent, emph ? Rgba{0, 0, 0, 1} : kText);
      layout.labelled.push_back(i);
      layout.label_boxes.push_back(pl.box);
    }
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
  Typesetter ts(cr);
  const Style& style = options.style;

  set_color(cr, options.background);
  cairo_paint(cr);

  double m = options.margin;
  double inner_w = options.width - 2 * m;
  Box area{m, m, options.width - m, options.height - m};

  std::string title = clean_text(options.title, false);
  if (!title.empty()) {
    const Font font = title_font(style);
    LineMetrics lm = ts.metrics(font);
    const Line& l = ts.line(font, title);
    ts.draw(l, options.width / 2 - l.width / 2, area.y0 + lm.ascent, kText);
    area.y0 += lm.height + 6;
  }
  Footer footer = layout_footer(ts, options, inner_w);
  area.y1 -= footer.height;
  if (area.y1 - area.y0 < 20) {
    throw Error(
        out.string() + ": cannot render figure: legend and caption leave no room for the plot",
        ErrorKind::usage);
  }

  RenderResult result;
  std::size_t count = panels.size();
  if (count == 1) {
    result.panels.push_back(draw_panel(cr, ts, panels[0], area, style, false, canvas.format()));
  } else if (count > 1) {
    bool titles = std::any_of(panels.begin(), panels.end(),
                              [](const PanelInput& p) { return !p.title.empty(); });
    double title_h = titles ? ts.metrics(panel_title_font(style)).height + 3 : 0;
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
      result.panels.push_back(draw_panel(cr, ts, panels[k], cell, style, true, canvas.format()));
    }
  }
  draw_footer(cr, ts, footer, options, area.y1);
  result.unknown_glyphs = ts.unknown_glyphs();
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
