#include <algorithm>
#include <cstdlib>

#include "io/io.hpp"
#include "io/json.hpp"
#include "model/model.hpp"

namespace tokmap::model {

namespace {

// Short names that Hugging Face maps to organisation ids.
constexpr std::pair<std::string_view, std::string_view> kAliases[] = {
    {"gpt2", "openai-community/gpt2"},
    {"gpt2-medium", "openai-community/gpt2-medium"},
    {"gpt2-large", "openai-community/gpt2-large"},
    {"gpt2-xl", "openai-community/gpt2-xl"},
    {"distilgpt2", "distilbert/distilgpt2"},
};

bool is_model_folder(const fs::path& folder) {
  std::error_code ec;
  return fs::is_regular_file(folder / "config.json", ec);
}

std::string cache_folder_name(std::string_view id) {
  std::string name = "models--";
  for (const char c : id) {
    if (c == '/') {
      name += "--";
    } else {
      name += c;
    }
  }
  return name;
}

bool safe_name(const std::string& name) {
  return !name.empty() && name.find('/') == std::string::npos && name != "." && name != "..";
}

std::string trimmed_file(const fs::path& path) {
  std::string text = io::read_text_file(path);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.pop_back();
  }
  return text;
}

// The snapshot of a cache entry: with a revision, refs/<revision> (a branch or tag) or the
// snapshot of that commit (a unique prefix of at least 7 characters will do); without one,
// the commit refs/main points at, else the only snapshot there is (some download tools write
// no refs). Empty when there is none; an ambiguous choice throws, listing the snapshots.
fs::path snapshot_of(const fs::path& entry, const std::string& id, const std::string& revision,
                     std::vector<std::string>& looked) {
  std::error_code ec;
  const std::string ref_name = revision.empty() ? "main" : revision;
  const fs::path ref = entry / "refs" / ref_name;
  looked.push_back(ref.string());
  std::string commit;
  if (safe_name(ref_name) && fs::is_regular_file(ref, ec)) commit = trimmed_file(ref);
  if (commit.empty() && !revision.empty()) commit = revision;
  const fs::path snapshots = entry / "snapshots";
  if (!commit.empty()) {
    if (!safe_name(commit)) return {};
    const fs::path snapshot = snapshots / commit;
    looked.push_back(snapshot.string());
    if (is_model_folder(snapshot)) return snapshot;
    if (revision.empty()) return {};
  }
  // No usable ref: look at the snapshot folders themselves.
  std::vector<fs::path> found;
  for (fs::directory_iterator it(snapshots, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!is_model_folder(it->path())) continue;
    if (!revision.empty() && !(revision.size() >= 7 && name.starts_with(revision))) continue;
    found.push_back(it->path());
  }
  std::sort(found.begin(), found.end());
  if (found.size() == 1) return found.front();
  if (found.size() > 1) {
    std::string names;
    for (const auto& f : found) names += (names.empty() ? "" : ", ") + f.filename().string();
    throw Error(snapshots.string() + ": " + std::to_string(found.size()) + " snapshots (" + names +
                ") and " +
                (revision.empty() ? "no refs/main" : "revision '" + revision + "' is ambiguous") +
                "; choose one with --model " + id + "@<commit>");
  }
  looked.push_back(snapshots.string() + (revision.empty() ? "/*" : "/" + revision + "*"));
  return {};
}

std::string join_places(const std::vector<std::string>& looked) {
  std::string text;
  for (std::size_t i = 0; i < looked.size(); ++i) {
    if (i > 0) text += ", ";
    text += looked[i];
  }
  return text;
}

// One path component of an Ollama name: letters, digits and . _ - (no "." or "..").
bool ollama_part(const std::string& part) {
  if (part.empty() || part == "." || part == ".." || part.size() > 256) return false;
  return std::all_of(part.begin(), part.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

}  // namespace

fs::path default_ollama_models() {
  if (const char* store = std::getenv("OLLAMA_MODELS"); store != nullptr && *store != '\0') {
    return store;
  }
  const char* user_home = std::getenv("HOME");
  return fs::path(user_home != nullptr ? user_home : "") / ".ollama" / "models";
}

fs::path find_ollama_model(const fs::path& store, std::string_view name_in,
                           std::vector<std::string>& looked) {
  // NAME[:TAG] with NAME = [[host/]namespace/]model.
  std::string name(name_in), tag = "latest";
  const auto colon = name.rfind(':');
  if (colon != std::string::npos && name.find('/', colon) == std::string::npos) {
    tag = name.substr(colon + 1);
    name = name.substr(0, colon);
  }
  std::vector<std::string> parts;
  for (std::size_t begin = 0;;) {
    const auto slash = name.find('/', begin);
    parts.push_back(name.substr(begin, slash - begin));
    if (slash == std::string::npos) break;
    begin = slash + 1;
  }
  if (parts.size() > 3 || !ollama_part(tag) ||
      !std::all_of(parts.begin(), parts.end(), ollama_part)) {
    return {};
  }
  if (parts.size() == 1) parts.insert(parts.begin(), "library");
  if (parts.size() == 2) parts.insert(parts.begin(), "registry.ollama.ai");
  const fs::path manifest = store / "manifests" / parts[0] / parts[1] / parts[2] / tag;
  looked.push_back(manifest.string() + " (Ollama)");
  std::error_code ec;
  if (!fs::is_regular_file(manifest, ec)) return {};

  const std::string where = manifest.string();
  const auto root = io::parse_json(io::read_text_file(manifest), where);
  const auto layers = root.is_object() ? root.find("layers") : root.end();
  if (layers == root.end() || !layers->is_array()) {
    throw Error(where + ": Ollama manifest has no 'layers' array");
  }
  for (const auto& layer : *layers) {
    if (!layer.is_object() ||
        layer.value("mediaType", std::string()) != "application/vnd.ollama.image.model") {
      continue;
    }
    const auto digest = layer.find("digest");
    const std::string text =
        digest != layer.end() && digest->is_string() ? digest->get<std::string>() : "";
    const bool valid = text.size() == 7 + 64 && text.starts_with("sha256:") &&
                       std::all_of(text.begin() + 7, text.end(), [](char c) {
                         return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                       });
    if (!valid) {
      throw Error(where + ": the model layer's digest must be sha256:<64 hex digits>, found '" +
                  text + "'");
    }
    const fs::path blob = store / "blobs" / ("sha256-" + text.substr(7));
    if (!fs::is_regular_file(blob, ec)) {
      throw Error(where + ": the model blob " + blob.string() +
                  " is missing (an interrupted pull? run: ollama pull " + std::string(name_in) +
                  ")");
    }
    if (const auto size = layer.find("size"); size != layer.end()) {
      if (!size->is_number_unsigned() || size->get<std::uint64_t>() != fs::file_size(blob, ec)) {
        throw Error(where + ": the model blob " + blob.string() + " has " +
                    std::to_string(fs::file_size(blob, ec)) + " bytes, the manifest says " +
                    size->dump());
      }
    }
    return blob;
  }
  throw Error(where +
              ": Ollama manifest has no layer of mediaType "
              "application/vnd.ollama.image.model");
}

fs::path default_hf_cache() {
  if (const char* cache = std::getenv("HF_HUB_CACHE"); cache != nullptr && *cache != '\0') {
    return cache;
  }
  if (const char* home = std::getenv("HF_HOME"); home != nullptr && *home != '\0') {
    return fs::path(home) / "hub";
  }
  const char* user_home = std::getenv("HOME");
  return fs::path(user_home != nullptr ? user_home : "") / ".cache" / "huggingface" / "hub";
}

ModelLocation resolve_model(std::string_view spec_in, const ResolveOptions& options) {
  const std::string spec(spec_in.empty() ? kDefaultModel : spec_in);
  std::vector<std::string> looked;
  std::error_code ec;

  // 1. A folder on disk.
  const fs::path as_path(spec);
  if (fs::is_directory(as_path, ec)) {
    if (!is_model_folder(as_path)) {
      throw Error(as_path.string() + ": not a model folder: config.json is missing");
    }
    return {as_path, spec};
  }
  // A model file (GGUF).
  if (fs::is_regular_file(as_path, ec)) return {as_path, spec};
  // "org/name" may be a Hugging Face id; only an explicit path skips the other places.
  const bool looks_like_path = spec.front() == '.' || spec.front() == '/' || spec.front() == '~';
  if (looks_like_path) throw Error("model folder " + spec + " does not exist");
  looked.push_back(as_path.string() + " (folder)");

  // 2. A bundled model.
  for (const auto& dir : options.bundled_dirs) {
    const fs::path candidate = dir / spec;
    looked.push_back(candidate.string());
    if (spec.find('/') == std::string::npos && is_model_folder(candidate)) return {candidate, spec};
  }

  // 3. The Hugging Face cache, by id and by alias; "id@revision" picks one snapshot.
  const fs::path cache = options.hf_cache.empty() ? default_hf_cache() : options.hf_cache;
  std::string id_part = spec, revision;
  if (const auto at = spec.rfind('@'); at != std::string::npos && at > 0) {
    id_part = spec.substr(0, at);
    revision = spec.substr(at + 1);
    if (revision.empty()) throw Error("model '" + spec + "': nothing after '@' (give a commit)");
  }
  std::vector<std::string> ids{id_part};
  for (const auto& [short_name, full_name] : kAliases) {
    if (id_part == short_name) ids.emplace_back(full_name);
    if (id_part == full_name) ids.emplace_back(short_name);
  }
  for (const auto& id : ids) {
    const fs::path entry = cache / cache_folder_name(id);
    if (const fs::path snapshot = snapshot_of(entry, id_part, revision, looked);
        !snapshot.empty()) {
      if (!fs::is_regular_file(snapshot / "model.safetensors", ec) &&
          fs::exists(snapshot / "pytorch_model.bin", ec)) {
        throw Error(snapshot.string() +
                    ": has only pytorch_model.bin; tokmap reads model.safetensors (download it "
                    "with: huggingface-cli download " +
                    id + " model.safetensors)");
      }
      return {snapshot, revision.empty() ? id : id + "@" + revision};
    }
  }
  // 4. The Ollama store.
  const fs::path ollama =
      options.ollama_models.empty() ? default_ollama_models() : options.ollama_models;
  if (const fs::path blob = find_ollama_model(ollama, spec, looked); !blob.empty()) {
    return {blob, spec};
  }
  throw Error("model '" + spec + "' not found; looked in: " + join_places(looked) +
              ". Pass a folder with config.json, model.safetensors and the tokenizer files, or on "
              "a connected machine run: huggingface-cli download " +
              (spec == std::string(kDefaultModel) ? std::string("gpt2")
               : revision.empty()                 ? id_part
                                                  : id_part + " --revision " + revision) +
              " (or, for an Ollama model, ollama pull " + spec + ")");
}

}  // namespace tokmap::model
