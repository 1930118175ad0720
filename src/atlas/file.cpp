// The .tokmap-atlas file: a safetensors container (the bounded, fuzzed reader in src/io) whose
// metadata holds the format name, its version and a JSON document; the arrays are tensors.
// Everything read is checked against the JSON's sizes before use (docs/ATLAS_FORMAT.md).
#include <nlohmann/json.hpp>
#include <string>

#include "atlas/atlas.hpp"
#include "io/io.hpp"
#include "io/json.hpp"

namespace tokmap::atlas {
namespace {

using nlohmann::json;

std::string tensor_name(int layer, const std::string& what) {
  return "layer." + std::to_string(layer) + "." + what;
}

[[noreturn]] void fail(const std::filesystem::path& path, const std::string& what) {
  throw Error(path.string() + ": " + what);
}

const json& field(const std::filesystem::path& path, const json& object, const char* key,
                  const std::string& where) {
  if (!object.is_object() || !object.contains(key))
    fail(path, "atlas metadata: " + where + "'" + key + "' is missing");
  return object.at(key);
}

std::uint64_t whole(const std::filesystem::path& path, const json& object, const char* key,
                    const std::string& where, std::uint64_t lo, std::uint64_t hi) {
  const json& v = field(path, object, key, where);
  // Negative numbers are number_integer, not number_unsigned, in nlohmann/json.
  if (!v.is_number_unsigned() || v.get<std::uint64_t>() < lo || v.get<std::uint64_t>() > hi)
    fail(path, "atlas metadata: " + where + "'" + key + "' must be a whole number in " +
                   std::to_string(lo) + ".." + std::to_string(hi));
  return v.get<std::uint64_t>();
}

std::string text(const std::filesystem::path& path, const json& object, const char* key,
                 const std::string& where) {
  const json& v = field(path, object, key, where);
  if (!v.is_string()) fail(path, "atlas metadata: " + where + "'" + key + "' must be a string");
  return v.get<std::string>();
}

double number(const std::filesystem::path& path, const json& object, const char* key,
              const std::string& where) {
  const json& v = field(path, object, key, where);
  if (!v.is_number() || !std::isfinite(v.get<double>()))
    fail(path, "atlas metadata: " + where + "'" + key + "' must be a finite number");
  return v.get<double>();
}

// A float32 tensor of exactly this shape, finite.
std::vector<float> array(const io::SafetensorsFile& file, const std::string& name,
                         std::vector<std::int64_t> shape) {
  const auto* t = file.find(name);
  if (t == nullptr) fail(file.path(), "array '" + name + "' is missing");
  const std::string at = "array '" + name + "' (data bytes " + std::to_string(t->begin) + ".." +
                         std::to_string(t->end) + ")";
  if (t->dtype != io::DType::F32) fail(file.path(), at + " must be F32");
  if (t->shape != shape) {
    std::string want, got;
    for (auto s : shape) want += (want.empty() ? "" : ",") + std::to_string(s);
    for (auto s : t->shape) got += (got.empty() ? "" : ",") + std::to_string(s);
    fail(file.path(), at + " has shape [" + got + "], expected [" + want + "]");
  }
  auto values = file.to_f32(*t);
  const auto bad = io::first_non_finite(values);
  if (bad != values.size())
    fail(file.path(), at + ": element " + std::to_string(bad) + " is not finite");
  return values;
}

}  // namespace

void write(const std::filesystem::path& path, const Atlas& atlas) {
  json meta;
  meta["model"] = atlas.model;
  meta["metric"] = atlas.metric;
  meta["normalize"] = atlas.normalize;
  meta["width"] = atlas.width;
  meta["rank"] = atlas.rank;
  meta["n"] = atlas.n;
  meta["perplexity"] = atlas.perplexity;
  meta["confidence_k"] = atlas.confidence_k;
  meta["seed"] = atlas.seed;
  meta["provenance"] = atlas.provenance;
  meta["texts"] = atlas.texts;
  json ids = json::array(), displays = json::array(), texts = json::array(),
       positions = json::array(), begins = json::array(), ends = json::array();
  for (const auto& t : atlas.tokens) {
    begins.push_back(t.begin);
    ends.push_back(t.end);
    ids.push_back(t.id);
    displays.push_back(t.display);
    texts.push_back(t.text);
    positions.push_back(t.position);
  }
  meta["tokens"] = {{"id", ids},       {"display", displays},
                    {"text", texts},   {"position", positions},
                    {"begin", begins}, {"end", ends}};
  json layers = json::array();
  for (const auto& l : atlas.layers) {
    json maps = json::array();
    for (const auto& m : l.maps) maps.push_back({{"dims", m.dims}, {"kl", m.kl}});
    layers.push_back({{"layer", l.layer}, {"maps", maps}});
  }
  meta["layers"] = layers;

  io::SafetensorsWriter writer(path);
  writer.set_metadata("format", "tokmap-atlas");
  writer.set_metadata("version", std::to_string(kFormatVersion));
  writer.set_metadata("atlas", meta.dump());
  const auto n = static_cast<std::int64_t>(atlas.n), w = static_cast<std::int64_t>(atlas.width),
             r = static_cast<std::int64_t>(atlas.rank);
  for (const auto& l : atlas.layers) {
    writer.declare(tensor_name(l.layer, "mean"), io::DType::F32, {w});
    writer.declare(tensor_name(l.layer, "pca_mean"), io::DType::F32, {w});
    writer.declare(tensor_name(l.layer, "components"), io::DType::F32, {r, w});
    writer.declare(tensor_name(l.layer, "features"), io::DType::F32, {n, r});
    for (const auto& m : l.maps) {
      const std::string d = std::to_string(m.dims);
      writer.declare(tensor_name(l.layer, "map" + d), io::DType::F32, {n, m.dims});
      writer.declare(tensor_name(l.layer, "calibration" + d), io::DType::F32,
                     {static_cast<std::int64_t>(m.calibration.size())});
    }
  }
  writer.begin();
  for (const auto& l : atlas.layers) {
    writer.write(tensor_name(l.layer, "mean"), 0, std::span<const float>(l.mean));
    writer.write(tensor_name(l.layer, "pca_mean"), 0, std::span<const float>(l.pca_mean));
    writer.write(tensor_name(l.layer, "components"), 0, std::span<const float>(l.components));
    writer.write(tensor_name(l.layer, "features"), 0, std::span<const float>(l.features));
    for (const auto& m : l.maps) {
      const std::string d = std::to_string(m.dims);
      writer.write(tensor_name(l.layer, "map" + d), 0, std::span<const float>(m.coords));
      writer.write(tensor_name(l.layer, "calibration" + d), 0,
                   std::span<const float>(m.calibration));
    }
  }
  writer.commit();
}

Atlas read(const std::filesystem::path& path) {
  const io::SafetensorsFile file(path);
  const auto& md = file.metadata();
  const auto format = md.find("format");
  if (format == md.end() || format->second != "tokmap-atlas")
    fail(path, "not a tokmap atlas (safetensors metadata 'format' is not 'tokmap-atlas')");
  const auto version = md.find("version");
  if (version == md.end()) fail(path, "atlas metadata 'version' is missing");
  if (version->second != std::to_string(kFormatVersion))
    fail(path, "atlas format version '" + version->second +
                   "' is not supported (this tokmap reads " + std::to_string(kFormatVersion) +
                   "; a newer tokmap may read it)");
  const auto doc = md.find("atlas");
  if (doc == md.end()) fail(path, "atlas metadata 'atlas' is missing");
  const json meta = io::parse_json(doc->second, path.string() + ": metadata 'atlas'");
  if (!meta.is_object()) fail(path, "atlas metadata: 'atlas' must be a JSON object");

  Atlas a;
  a.model = text(path, meta, "model", "");
  a.metric = text(path, meta, "metric", "");
  if (a.metric != "cosine" && a.metric != "euclidean")
    fail(path, "atlas metadata: 'metric' must be cosine or euclidean");
  a.normalize = text(path, meta, "normalize", "");
  const std::uint64_t limit = io::max_input_bytes() / 4;
  a.width = whole(path, meta, "width", "", 1, 1 << 20);
  a.rank = whole(path, meta, "rank", "", 1, a.width);
  a.n = whole(path, meta, "n", "", 2, limit / a.rank);
  a.perplexity = number(path, meta, "perplexity", "");
  if (!(a.perplexity >= 1.0) || a.perplexity > double(a.n))
    fail(path, "atlas metadata: 'perplexity' must be in 1..n");
  a.confidence_k = static_cast<int>(whole(path, meta, "confidence_k", "", 1, 100));
  a.seed = whole(path, meta, "seed", "", 0, UINT64_MAX);
  a.provenance = text(path, meta, "provenance", "");
  const json& texts = field(path, meta, "texts", "");
  if (!texts.is_array()) fail(path, "atlas metadata: 'texts' must be an array of strings");
  for (const auto& t : texts) {
    if (!t.is_string()) fail(path, "atlas metadata: 'texts' must be an array of strings");
    a.texts.push_back(t.get<std::string>());
  }
  const json& tokens = field(path, meta, "tokens", "");
  for (const char* key : {"id", "display", "text", "position", "begin", "end"}) {
    const json& v = field(path, tokens, key, "tokens.");
    if (!v.is_array() || v.size() != a.n)
      fail(path, std::string("atlas metadata: 'tokens.") + key +
                     "' must be an array of n = " + std::to_string(a.n) + " entries");
  }
  a.tokens.resize(a.n);
  for (std::size_t i = 0; i < a.n; ++i) {
    const json& id = tokens["id"][i];
    const json& display = tokens["display"][i];
    const json& t = tokens["text"][i];
    const json& p = tokens["position"][i];
    if (!id.is_number_integer() || !display.is_string() || !t.is_number_integer() ||
        !p.is_number_integer() || id.get<std::int64_t>() < 0 ||
        id.get<std::int64_t>() > INT32_MAX || t.get<std::int64_t>() < 0 ||
        t.get<std::uint64_t>() >= a.texts.size() || p.get<std::int64_t>() < 0 ||
        p.get<std::int64_t>() > INT32_MAX)
      fail(path, "atlas metadata: token " + std::to_string(i) +
                     " needs a non-negative id, a display string, a text index below " +
                     std::to_string(a.texts.size()) + " and a non-negative position");
    a.tokens[i] = {static_cast<std::int32_t>(id.get<std::int64_t>()), display.get<std::string>(),
                   static_cast<std::int32_t>(t.get<std::int64_t>()),
                   static_cast<std::int32_t>(p.get<std::int64_t>())};
    const json& b = tokens["begin"][i];
    const json& e = tokens["end"][i];
    const std::size_t size = a.texts[a.tokens[i].text].size();
    if (!b.is_number_unsigned() || !e.is_number_unsigned() ||
        b.get<std::uint64_t>() > e.get<std::uint64_t>() || e.get<std::uint64_t>() > size)
      fail(path, "atlas metadata: token " + std::to_string(i) +
                     " needs begin <= end <= " + std::to_string(size) + " (the bytes of its text)");
    a.tokens[i].begin = static_cast<std::uint32_t>(b.get<std::uint64_t>());
    a.tokens[i].end = static_cast<std::uint32_t>(e.get<std::uint64_t>());
  }
  const json& layers = field(path, meta, "layers", "");
  if (!layers.is_array() || layers.empty() || layers.size() > 4096)
    fail(path, "atlas metadata: 'layers' must be a non-empty array");
  const auto n = static_cast<std::int64_t>(a.n), w = static_cast<std::int64_t>(a.width),
             r = static_cast<std::int64_t>(a.rank);
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const std::string where = "layers[" + std::to_string(i) + "].";
    AtlasLayer l;
    l.layer = static_cast<int>(whole(path, layers[i], "layer", where, 0, 100000));
    for (const auto& earlier : a.layers)
      if (earlier.layer == l.layer)
        fail(path, "atlas metadata: layer " + std::to_string(l.layer) + " appears twice");
    l.mean = array(file, tensor_name(l.layer, "mean"), {w});
    l.pca_mean = array(file, tensor_name(l.layer, "pca_mean"), {w});
    l.components = array(file, tensor_name(l.layer, "components"), {r, w});
    l.features = array(file, tensor_name(l.layer, "features"), {n, r});
    const json& maps = field(path, layers[i], "maps", where);
    if (!maps.is_array() || maps.empty() || maps.size() > 2)
      fail(path, "atlas metadata: " + where + "'maps' must list 1 or 2 maps");
    for (std::size_t k = 0; k < maps.size(); ++k) {
      const std::string mw = where + "maps[" + std::to_string(k) + "].";
      AtlasMap m;
      m.dims = static_cast<int>(whole(path, maps[k], "dims", mw, 2, 3));
      for (const auto& earlier : l.maps)
        if (earlier.dims == m.dims) fail(path, "atlas metadata: " + mw + "'dims' repeats");
      m.kl = number(path, maps[k], "kl", mw);
      const std::string d = std::to_string(m.dims);
      m.coords = array(file, tensor_name(l.layer, "map" + d), {n, m.dims});
      m.calibration = array(file, tensor_name(l.layer, "calibration" + d), {a.confidence_k + 1});
      for (const float c : m.calibration)
        if (c < 0 || c > 1)
          fail(path, "array '" + tensor_name(l.layer, "calibration" + d) +
                         "': confidences must lie in [0, 1]");
      l.maps.push_back(std::move(m));
    }
    a.layers.push_back(std::move(l));
  }
  return a;
}

}  // namespace tokmap::atlas
