#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/inputs.hpp"
#include "io/io.hpp"

namespace tokmap::cli {

namespace {

struct EmbedOptions {
  CommonOptions common;
  TextInputOptions input;
  std::string model;
  std::string layers = "all";
  std::string out;
  int threads = 0;
  int window_stride = 0;
};

std::string json_text(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void run_embed(const EmbedOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const auto texts = read_texts(options.input, options.common);
  const model::ModelLocation location = model::resolve_model(options.model, resolve_options());
  const auto tokenizer = load_tokenizer(location.folder, texts);
  const tokenizer::Tokenizer* tok = tokenizer ? &*tokenizer : nullptr;
  const model::Model model = model::Model::load(location.folder);
  const auto& config = model.config();
  const std::vector<int> layers = model::parse_layers(options.layers, config.n_layer);
  const auto encoded = encode_texts(tok, texts, options.input.lossy, options.common);

  std::vector<std::vector<std::int32_t>> ids;
  std::vector<std::size_t> text_start;  // index of each text's first token in the output
  std::size_t total = 0;
  nlohmann::json tokens = nlohmann::json::array(), text_list = nlohmann::json::array(),
                 offsets = nlohmann::json::array();
  std::vector<std::int64_t> all_ids, text_index, position;
  for (std::size_t t = 0; t < encoded.size(); ++t) {
    const auto& encoding = encoded[t].encoding;
    if (encoding.ids.empty()) throw Error(encoded[t].source->origin + ": text has no tokens");
    ids.push_back(encoding.ids);
    text_start.push_back(total);
    total += encoding.ids.size();
    text_list.push_back(encoded[t].source->text);
    for (std::size_t i = 0; i < encoding.ids.size(); ++i) {
      tokens.push_back(display_token(tok, encoding.ids[i]));
      offsets.push_back({encoding.offsets[i].first, encoding.offsets[i].second});
      all_ids.push_back(encoding.ids[i]);
      text_index.push_back(static_cast<std::int64_t>(t));
      position.push_back(static_cast<std::int64_t>(i));
    }
  }

  const auto N = static_cast<std::int64_t>(total);
  const auto d = static_cast<std::int64_t>(config.n_embd);
  io::SafetensorsWriter writer(options.out);
  writer.set_metadata("format", "tokmap-embeddings/1");
  writer.set_metadata("model", location.name);
  writer.set_metadata("layers", json_text(layers));
  writer.set_metadata("tokens", json_text(tokens));
  writer.set_metadata("texts", json_text(text_list));
  writer.set_metadata("offsets", json_text(offsets));
  writer.declare("hidden_states", io::DType::F32, {static_cast<std::int64_t>(layers.size()), N, d});
  writer.declare("input_ids", io::DType::I64, {N});
  writer.declare("text_index", io::DType::I64, {N});
  writer.declare("position", io::DType::I64, {N});
  writer.begin();  // fails here, before the forward pass, when the output is not writable
  writer.write("input_ids", 0, std::span<const std::int64_t>(all_ids));
  writer.write("text_index", 0, std::span<const std::int64_t>(text_index));
  writer.write("position", 0, std::span<const std::int64_t>(position));

  model::ForwardOptions forward_options;
  forward_options.layers = layers;
  forward_options.threads = options.threads;
  forward_options.window_stride = options.window_stride;
  if (const auto advice = model::blas_kernel_advice(); !advice.empty() && total >= 1000) {
    warn(options.common, advice);
  }
  Progress progress(options.common, "embed", total);
  model::forward(
      model, ids, forward_options,
      [&](const model::HiddenStates& states) {
        const std::size_t row = text_start[states.text_index] + states.first_token;
        for (std::size_t l = 0; l < states.layers.size(); ++l) {
          // hidden_states is (layer, token, d): each layer's rows go to their own place.
          writer.write("hidden_states", (l * total + row) * states.width, states.layers[l]);
        }
      },
      [&](std::size_t done, std::size_t) { progress.update(done); });
  progress.finish();
  writer.commit();

  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  char summary[512];
  std::snprintf(summary, sizeof summary,
                "wrote %s: %zu text(s), %zu tokens, %zu layer(s) x %d dims of %s (%.2fM "
                "parameters) in %.2f s",
                options.out.c_str(), texts.size(), total, layers.size(), config.n_embd,
                location.name.c_str(), model.parameter_count() / 1e6, seconds);
  info(options.common, summary);
}

}  // namespace

void add_embed_command(CLI::App& app) {
  auto options = std::make_shared<EmbedOptions>();
  auto* command = app.add_subcommand(
      "embed", "Run the model and save every token's hidden state per layer (.safetensors)");
  add_model_flag(*command, options->model);
  add_text_input_flags(*command, options->input);
  command
      ->add_option("-l,--layers", options->layers,
                   "Hidden states to keep: all, last, or a list such as 0,3,6 (0 = token + "
                   "position embeddings, n_layer = last block after ln_f; negatives count from the "
                   "end: -1 = "
                   "last)")
      ->capture_default_str();
  command
      ->add_option("-o,--out", options->out,
                   "Output .safetensors: hidden_states F32 [layers, tokens, d], input_ids, "
                   "text_index, position (I64 [tokens]), metadata layers/model/tokens/texts")
      ->required();
  command->add_option("--threads", options->threads, "Threads (default: all cores)")
      ->check(whole_number(0));
  command
      ->add_option("--window-stride", options->window_stride,
                   "Texts longer than the model's context run in windows this many tokens "
                   "apart (default: half the context)")
      ->check(whole_number(0));
  add_common_flags(*command, options->common);
  command->footer(
      "Examples:\n"
      "  tokmap embed --file samples/sentences.txt --layers 0,-1 --out states.safetensors\n"
      "  tokmap embed --model gpt2 --text \"The bank of the river.\" --out gpt2.safetensors\n"
      "  tokmap embed --model ./tiny-llama --ids 1,464,314 --ids 1,52 --out ids.safetensors");
  command->callback([options] { run_embed(*options); });
}

}  // namespace tokmap::cli
