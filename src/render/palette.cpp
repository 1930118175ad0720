// Colour palettes shared by the static figures and the HTML report.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "render/render.hpp"

namespace tokmap::render {

namespace {

// Okabe & Ito (2008), "Color Universal Design", ordered so the first hues read best as filled
// markers on white (yellow, the faintest, late; black last). web/src/palette.js uses the same
// order so the report page and the figures agree.
constexpr std::array<std::uint32_t, 8> kOkabeIto = {
    0x0072B2, 0xE69F00, 0x009E73, 0xD55E00, 0xCC79A7, 0x56B4E9, 0xF0E442, 0x000000,
};

// matplotlib's _cm_listed.py, rounded to 8 bits.
constexpr std::array<std::uint32_t, 256> kViridis = {
#include "render/viridis.inc"
};
constexpr std::array<std::uint32_t, 256> kCividis = {
#include "render/cividis.inc"
};

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Rgba mix(const Rgba& a, const Rgba& b, double t) {
  return {a.r + (b.r - a.r) * t, a.g + (b.g - a.g) * t, a.b + (b.b - a.b) * t, a.a};
}

}  // namespace

Rgba rgb(std::uint32_t hex, double alpha) {
  return {((hex >> 16) & 0xFF) / 255.0, ((hex >> 8) & 0xFF) / 255.0, (hex & 0xFF) / 255.0, alpha};
}

Rgba parse_hex(std::string_view text) {
  std::string_view digits = text;
  if (!digits.empty() && digits.front() == '#') digits.remove_prefix(1);
  if (digits.size() != 6 && digits.size() != 8) {
    throw Error("bad colour '" + std::string(text) + "': expected #RRGGBB or #RRGGBBAA",
                ErrorKind::usage);
  }
  std::uint32_t value = 0;
  for (char c : digits) {
    int d = hex_digit(c);
    if (d < 0) {
      throw Error("bad colour '" + std::string(text) + "': expected #RRGGBB or #RRGGBBAA",
                  ErrorKind::usage);
    }
    value = value * 16 + static_cast<std::uint32_t>(d);
  }
  if (digits.size() == 8) return rgb(value >> 8, (value & 0xFF) / 255.0);
  return rgb(value);
}

std::string to_hex(const Rgba& color) {
  auto byte = [](double v) {
    return static_cast<unsigned>(std::lround(std::clamp(v, 0.0, 1.0) * 255.0));
  };
  char buffer[8];
  std::snprintf(buffer, sizeof buffer, "#%02x%02x%02x", byte(color.r), byte(color.g),
                byte(color.b));
  return buffer;
}

Rgba categorical_color(std::size_t index) {
  Rgba base = rgb(kOkabeIto[index % kOkabeIto.size()]);
  std::size_t round = index / kOkabeIto.size();
  if (round == 0) return base;
  // Rounds 1, 3, 5, ... darken; 2, 4, 6, ... lighten; each pair a step further, never reaching
  // black or white.
  std::size_t step = (round + 1) / 2;
  double amount = 1.0 - std::pow(0.62, static_cast<double>(step));  // 0.38, 0.62, 0.76, ...
  bool darker = round % 2 == 1;
  if (base.r + base.g + base.b == 0.0) {  // black: ever lighter greys
    double grey = 0.85 * (1.0 - std::pow(0.7, static_cast<double>(round)));
    return {grey, grey, grey, 1};
  }
  if (darker) return mix(base, Rgba{0, 0, 0, 1}, amount * 0.85);
  return mix(base, Rgba{1, 1, 1, 1}, amount * 0.85);
}

std::string palette_hex(std::size_t index) { return to_hex(categorical_color(index)); }

std::vector<Rgba> categorical_palette(std::size_t count) {
  std::vector<Rgba> colors(count);
  for (std::size_t i = 0; i < count; ++i) colors[i] = categorical_color(i);
  return colors;
}

const std::array<std::uint32_t, 256>& colormap_table(ColorMap map) {
  return map == ColorMap::cividis ? kCividis : kViridis;
}

Rgba colormap_color(ColorMap map, double t) {
  if (!(t >= 0.0)) t = 0.0;  // NaN too
  if (t > 1.0) t = 1.0;
  const auto& table = colormap_table(map);
  auto index = static_cast<std::size_t>(std::lround(t * 255.0));
  return rgb(table[index]);
}

std::string colormap_hex(ColorMap map, double t) { return to_hex(colormap_color(map, t)); }

}  // namespace tokmap::render
