#include "model/weights_internal.hpp"
namespace tokmap::model {
Model load_gguf(const fs::path& path) { throw Error(path.string() + ": GGUF is not supported yet"); }
}
