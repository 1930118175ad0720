// Model files. GGUF (llama.cpp, Ollama, LM Studio) is planned (issue #12) but not read yet: the
// loader says so instead of guessing at the file.
#include "model/weights_internal.hpp"

namespace tokmap::model {

Model load_gguf(const fs::path& path) {
  throw Error(path.string() +
              ": tokmap does not read GGUF (or other single model files) yet; give a Hugging Face "
              "model folder (config.json + model.safetensors or its shards)");
}

}  // namespace tokmap::model
