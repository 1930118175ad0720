#include <cstdlib>

#include "io/io.hpp"
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

// The snapshot a cache entry's refs/main points at, or empty.
fs::path snapshot_of(const fs::path& entry, std::vector<std::string>& looked) {
  std::error_code ec;
  const fs::path ref = entry / "refs" / "main";
  looked.push_back(ref.string());
  if (!fs::is_regular_file(ref, ec)) return {};
  std::string commit = io::read_text_file(ref);
  while (!commit.empty() &&
         (commit.back() == '\n' || commit.back() == '\r' || commit.back() == ' ')) {
    commit.pop_back();
  }
  if (commit.empty() || commit.find('/') != std::string::npos ||
      commit.find("..") != std::string::npos) {
    return {};
  }
  const fs::path snapshot = entry / "snapshots" / commit;
  looked.push_back(snapshot.string());
  return is_model_folder(snapshot) ? snapshot : fs::path{};
}

std::string join_places(const std::vector<std::string>& looked) {
  std::string text;
  for (std::size_t i = 0; i < looked.size(); ++i) {
    if (i > 0) text += ", ";
    text += looked[i];
  }
  return text;
}

}  // namespace

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

  // 3. The Hugging Face cache, by id and by alias.
  const fs::path cache = options.hf_cache.empty() ? default_hf_cache() : options.hf_cache;
  std::vector<std::string> ids{spec};
  for (const auto& [short_name, full_name] : kAliases) {
    if (spec == short_name) ids.emplace_back(full_name);
    if (spec == full_name) ids.emplace_back(short_name);
  }
  for (const auto& id : ids) {
    const fs::path entry = cache / cache_folder_name(id);
    if (const fs::path snapshot = snapshot_of(entry, looked); !snapshot.empty()) {
      if (!fs::is_regular_file(snapshot / "model.safetensors", ec) &&
          fs::exists(snapshot / "pytorch_model.bin", ec)) {
        throw Error(snapshot.string() +
                    ": has only pytorch_model.bin; tokmap reads model.safetensors (download it "
                    "with: huggingface-cli download " +
                    id + " model.safetensors)");
      }
      return {snapshot, id};
    }
  }
  throw Error("model '" + spec + "' not found; looked in: " + join_places(looked) +
              ". Pass a folder with config.json, model.safetensors and the tokenizer files, or on "
              "a connected machine run: huggingface-cli download " +
              (spec == std::string(kDefaultModel) ? std::string("gpt2") : spec));
}

}  // namespace tokmap::model
