// .tokmap-atlas reader on arbitrary bytes; an atlas that reads must place a point.
#include "atlas/atlas.hpp"
#include "fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto path = tokmap::fuzz::scratch_file(".tokmap-atlas");
  tokmap::fuzz::write_input(path, data, size);
  try {
    const auto atlas = tokmap::atlas::read(path);
    if (atlas.tokens.size() != atlas.n || atlas.layers.empty()) std::abort();
    if (atlas.n <= 4096) {
      std::vector<float> raw(atlas.width, 0.5f);
      tokmap::atlas::PlaceOptions options;
      options.iterations = 2;
      options.threads = 1;
      const auto placed = tokmap::atlas::place(atlas, 0, raw, 1, options);
      for (const auto& p : placed)
        if (!(p.confidence[0] >= 0 && p.confidence[0] <= 1)) std::abort();
    }
  } catch (const tokmap::Error&) {
  }
  return 0;
}
