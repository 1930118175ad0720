// tokmap._tokmap: the Python bindings over the library (src/explore, src/tsne, src/atlas), not
// over the CLI. The public API, its validation and docstrings live in python/tokmap/*.py; this
// module takes already-checked, plain arguments (C-contiguous float32 arrays, strings, numbers)
// and returns numpy arrays and dicts of them.
//
// Every long call runs with the GIL released. Callbacks into Python (progress, the t-SNE
// callback, warnings) take it back briefly; so does the check for Ctrl-C, which Python can only
// see on its main thread: a pending KeyboardInterrupt stops the work at its next check and is
// raised once the library has unwound, with nothing written.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "atlas/atlas.hpp"
#include "core/error.hpp"
#include "explore/explore.hpp"
#include "io/io.hpp"
#include "model/model.hpp"
#include "report/report.hpp"
#include "tsne/tsne.hpp"

namespace py = pybind11;
using namespace tokmap;

namespace {

// --- Talking to Python while the GIL is released ------------------------------------------------

// Thrown through the library when the caller asked to stop (Ctrl-C, or a Python callback
// raised); the Python error is kept in Gate::pending and raised instead of this.
struct Stopped : std::exception {
  const char* what() const noexcept override { return "stopped"; }
};

// One long call's line back to Python. check() and call() may run on the calling thread only
// (where the GIL was released); stop_requested() on any thread.
class Gate {
 public:
  Gate() : caller_(std::this_thread::get_id()) {}

  bool stop_requested() {
    if (stopped_.load()) return true;
    if (std::this_thread::get_id() != caller_) return false;
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) keep_python_error();
    return stopped_.load();
  }
  // Runs f with the GIL held; a Python exception in it stops the work (returns false).
  template <typename F>
  bool call(F&& f) {
    if (stopped_.load()) return false;
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) {
      keep_python_error();
      return false;
    }
    try {
      f();
    } catch (py::error_already_set&) {
      pending_ = std::current_exception();
      stopped_ = true;
      return false;
    }
    return true;
  }
  // With the GIL held again: raises the kept Python error, if any.
  void rethrow() {
    if (pending_) {
      auto pending = std::exchange(pending_, nullptr);
      std::rethrow_exception(pending);
    }
  }

 private:
  void keep_python_error() {
    pending_ = std::make_exception_ptr(py::error_already_set());
    stopped_ = true;
  }
  std::thread::id caller_;
  std::atomic<bool> stopped_{false};
  std::exception_ptr pending_;
};

// Runs `work` without the GIL, then raises what a callback kept (KeyboardInterrupt first: a
// library error that the stop caused is not the user's problem).
template <typename F>
auto without_gil(Gate& gate, F&& work) -> decltype(work()) {
  using R = decltype(work());
  std::optional<R> result;
  std::exception_ptr failure;
  {
    py::gil_scoped_release release;
    try {
      result.emplace(work());
    } catch (...) {
      failure = std::current_exception();
    }
  }
  gate.rethrow();
  if (failure) std::rethrow_exception(failure);
  return std::move(*result);
}

// Hooks for the explore pipeline: warnings to a Python callable, progress to another. The
// callables are held by pointer: the library may copy or destroy the hooks without the GIL,
// which a py::object's reference count must not see. Both must outlive the call.
explore::Hooks python_hooks(Gate& gate, const py::object& warn, const py::object& progress) {
  explore::Hooks hooks;
  const py::object* w = &warn;
  const py::object* p = &progress;
  if (!warn.is_none()) {
    hooks.warn = [&gate, w](std::string_view message) {
      gate.call([&] { (*w)(py::str(message.data(), message.size())); });
    };
  }
  // Ctrl-C: the library asks between texts, forward batches and t-SNE iterations, from any of
  // its threads; only the calling thread can see Python's signals (Gate::stop_requested).
  hooks.cancelled = [&gate] { return gate.stop_requested(); };
  hooks.progress = [&gate, p](std::string_view what, std::size_t done, std::size_t total) {
    if (p->is_none()) {
      gate.stop_requested();
    } else {
      gate.call([&] { (*p)(py::str(what.data(), what.size()), done, total); });
    }
  };
  return hooks;
}

// --- numpy ------------------------------------------------------------------------------------

template <typename T>
py::array_t<T> to_array(const std::vector<T>& values, std::vector<py::ssize_t> shape) {
  py::array_t<T> out(shape);
  if (!values.empty()) std::memcpy(out.mutable_data(), values.data(), values.size() * sizeof(T));
  return out;
}

template <typename T, typename U>
py::array_t<T> column(const std::vector<U>& rows, auto field) {
  py::array_t<T> out(static_cast<py::ssize_t>(rows.size()));
  auto view = out.template mutable_unchecked<1>();
  for (std::size_t i = 0; i < rows.size(); ++i)
    view(py::ssize_t(i)) = static_cast<T>(field(rows[i]));
  return out;
}

using FloatMatrix = py::array_t<float, py::array::c_style | py::array::forcecast>;

// --- Models -----------------------------------------------------------------------------------

model::ResolveOptions g_resolve;  // set by _set_model_dirs at import

// One engine per process: a model loaded once (load_model, viz, Atlas) is shared by every call.
explore::Engine& engine() {
  static explore::Engine* instance = new explore::Engine(g_resolve);  // never destroyed at exit
  return *instance;
}

std::vector<explore::Text> make_texts(const std::vector<std::string>& texts) {
  std::vector<explore::Text> out;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const std::string origin = "texts[" + std::to_string(i) + "]";
    if (texts[i].empty()) throw Error(origin + " is empty", ErrorKind::usage);
    out.push_back({texts[i], origin, false});
  }
  if (out.empty()) throw Error("give at least one text", ErrorKind::usage);
  return out;
}

struct Model {
  const explore::LoadedModel* loaded = nullptr;
  const tokenizer::Tokenizer& tokenizer() const {
    if (!loaded->tokenizer) throw Error("model " + loaded->name + " has no tokenizer");
    return *loaded->tokenizer;
  }
};

// Tokens of texts with the metadata `tokmap embed` writes (ids, display, offsets, text, position).
struct Tokens {
  std::vector<tokenizer::Encoding> encodings;
  std::size_t total = 0;
};

Tokens encode_all(const Model& m, const std::vector<explore::Text>& texts,
                  const explore::EncodeOptions& options, const explore::Hooks& hooks,
                  bool require_tokens) {
  Tokens t;
  const auto& tok = m.tokenizer();
  for (const auto& text : texts) {
    if (t.encodings.size() % 64 == 0) hooks.check_cancelled();  // Ctrl-C in a long list
    t.encodings.push_back(explore::encode(&tok, text, options, hooks));
    if (require_tokens && t.encodings.back().ids.empty())
      throw Error(text.origin + ": text has no tokens");
    t.total += t.encodings.back().ids.size();
  }
  return t;
}

py::dict token_table(const Model& m, const Tokens& t) {
  const auto n = static_cast<py::ssize_t>(t.total);
  py::array_t<std::int64_t> ids(n), text(n), position(n), offsets({n, py::ssize_t(2)});
  auto vi = ids.mutable_unchecked<1>();
  auto vt = text.mutable_unchecked<1>();
  auto vp = position.mutable_unchecked<1>();
  auto vo = offsets.mutable_unchecked<2>();
  py::list display, vocab;
  const auto* tok = m.loaded->tokenizer ? &*m.loaded->tokenizer : nullptr;
  py::ssize_t row = 0;
  for (std::size_t k = 0; k < t.encodings.size(); ++k) {
    const auto& e = t.encodings[k];
    for (std::size_t i = 0; i < e.ids.size(); ++i, ++row) {
      vi(row) = e.ids[i];
      vt(row) = std::int64_t(k);
      vp(row) = std::int64_t(i);
      vo(row, 0) = std::int64_t(e.offsets[i].first);
      vo(row, 1) = std::int64_t(e.offsets[i].second);
      display.append(explore::display_token(tok, e.ids[i]));
      const auto s = tok ? tok->token_string(e.ids[i]) : std::string_view{};
      vocab.append(py::str(s.data(), s.size()));
    }
  }
  py::dict d;
  d["ids"] = ids;
  d["display"] = display;
  d["tokens"] = vocab;
  d["offsets"] = offsets;
  d["text_index"] = text;
  d["position"] = position;
  return d;
}

// --- Reports ----------------------------------------------------------------------------------

struct Report {
  explore::Result result;
};

py::dict tokens_of(const report::ReportData& data) {
  const auto& t = data.tokens;
  py::dict d;
  d["text_index"] = column<std::int64_t>(t, [](const report::Token& x) { return x.text; });
  d["position"] = column<std::int64_t>(t, [](const report::Token& x) { return x.position; });
  d["id"] = column<std::int64_t>(t, [](const report::Token& x) { return x.id; });
  d["begin"] = column<std::int64_t>(t, [](const report::Token& x) { return x.offset.first; });
  d["end"] = column<std::int64_t>(t, [](const report::Token& x) { return x.offset.second; });
  py::list display, kind, label, source;
  for (const auto& x : t) {
    display.append(x.display);
    kind.append(x.kind);
    label.append(x.label.empty() ? x.display : x.label);
    source.append(x.source);
  }
  d["display"] = display;
  d["label"] = label;
  d["kind"] = kind;
  if (!t.empty() && !t.front().source.empty()) {
    d["source"] = source;
    d["confidence"] = column<float>(t, [](const report::Token& x) { return x.confidence; });
  }
  return d;
}

py::list maps_of(const report::ReportData& data) {
  py::list out;
  const auto n = static_cast<py::ssize_t>(data.tokens.size());
  for (const auto& m : data.maps) {
    py::dict d;
    d["model"] = data.models.at(std::size_t(m.model));
    d["layer"] = m.layer;
    d["perplexity"] = m.perplexity;
    d["dims"] = m.dims;
    d["coords"] = to_array(m.coords, {n, py::ssize_t(m.dims)});
    d["kl"] = m.kl;
    d["kl_uniform"] = m.kl_uniform;
    d["trustworthiness"] = m.trustworthiness;
    d["continuity"] = m.continuity;
    d["knn_preservation"] = m.knn_preservation;
    d["k"] = m.k;
    d["stability"] = m.stability ? py::cast(*m.stability) : py::none();
    if (!m.point_stability.empty()) d["point_stability"] = to_array(m.point_stability, {n});
    if (!m.confidence.empty()) d["confidence"] = to_array(m.confidence, {n});
    py::list seeds;
    for (const auto& s : m.seed_coords) seeds.append(to_array(s, {n, py::ssize_t(m.dims)}));
    d["seed_coords"] = seeds;
    out.append(d);
  }
  return out;
}

py::list states_of(const explore::Result& r) {
  py::list out;
  for (const auto& s : r.states) {
    py::dict d;
    d["model"] = s.name;
    d["n_layer"] = s.n_layer;
    d["layers"] = s.layers;
    py::dict by_layer;
    for (std::size_t l = 0; l < s.layers.size(); ++l) {
      by_layer[py::int_(s.layers[l])] = to_array(
          s.hidden[l], {py::ssize_t(s.hidden[l].size() / std::max<std::size_t>(1, s.width)),
                        py::ssize_t(s.width)});
    }
    d["hidden"] = by_layer;
    out.append(d);
  }
  return out;
}

std::string page_html(const report::ReportData& data) {
  constexpr std::string_view kPlaceholder = "/*TOKMAP_DATA*/null";  // as report::write_html
  const std::string_view page = report::page_template();
  const std::size_t at = page.find(kPlaceholder);
  if (at == std::string_view::npos)
    throw Error("the bundled report page has no data placeholder (build problem in web/)");
  std::string html(page.substr(0, at));
  html += report::to_json(data);
  html += page.substr(at + kPlaceholder.size());
  return html;
}

// --- Atlases ----------------------------------------------------------------------------------

struct Embedded {
  std::vector<std::vector<float>> states;  // [layer] (n, width)
  std::vector<atlas::AtlasToken> tokens;
  std::size_t width = 0;
};

// Every token but each text's first, as `tokmap atlas build|place` embed them (src/cli/
// atlas_command.cpp): up to max_tokens, all texts in one forward pass, or one text at a time
// (placement: a token's state must not depend on the other texts).
Embedded embed_tokens(const explore::LoadedModel& lm, const std::vector<tokenizer::Encoding>& enc,
                      const std::vector<int>& layers, int threads, std::size_t max_tokens,
                      bool one_text_at_a_time, Gate& gate) {
  Embedded e;
  const auto* tok = lm.tokenizer ? &*lm.tokenizer : nullptr;
  e.width = static_cast<std::size_t>(lm.model.config().n_embd);
  std::vector<std::vector<std::int32_t>> ids;
  std::vector<std::vector<std::int64_t>> row_of(enc.size());
  for (std::size_t t = 0; t < enc.size(); ++t) {
    ids.push_back(enc[t].ids);
    row_of[t].assign(enc[t].ids.size(), -1);
    for (std::size_t p = 1; p < enc[t].ids.size() && e.tokens.size() < max_tokens; ++p) {
      row_of[t][p] = static_cast<std::int64_t>(e.tokens.size());
      e.tokens.push_back({enc[t].ids[p], explore::display_token(tok, enc[t].ids[p]),
                          static_cast<std::int32_t>(t), static_cast<std::int32_t>(p),
                          static_cast<std::uint32_t>(enc[t].offsets[p].first),
                          static_cast<std::uint32_t>(enc[t].offsets[p].second)});
    }
  }
  e.states.assign(layers.size(), std::vector<float>(e.tokens.size() * e.width));
  model::ForwardOptions fo;
  fo.layers = layers;
  fo.threads = threads;
  std::size_t base = 0;
  const auto keep = [&](const model::HiddenStates& h) {
    for (std::size_t i = 0; i < h.token_count; ++i) {
      const auto row = row_of[base + h.text_index][h.first_token + i];
      if (row < 0) continue;
      for (std::size_t l = 0; l < h.layers.size(); ++l)
        std::copy_n(h.layers[l].data() + i * h.width, h.width,
                    e.states[l].data() + std::size_t(row) * h.width);
    }
  };
  const auto tick = [&](std::size_t, std::size_t) {
    if (gate.stop_requested()) throw Stopped();
  };
  if (one_text_at_a_time) {
    for (base = 0; base < ids.size(); ++base) {
      if (gate.stop_requested()) throw Stopped();
      model::forward(lm.model, std::span(ids).subspan(base, 1), fo, keep, tick);
    }
  } else {
    model::forward(lm.model, ids, fo, keep, tick);
  }
  return e;
}

const explore::LoadedModel& model_for(const py::object& model, const std::string& fallback) {
  if (model.is_none()) return engine().load(fallback);
  if (py::isinstance<Model>(model)) return *model.cast<const Model&>().loaded;
  return engine().load(model.cast<std::string>());
}

py::dict atlas_tokens(const atlas::Atlas& a) {
  const auto& t = a.tokens;
  py::dict d;
  d["id"] = column<std::int64_t>(t, [](const atlas::AtlasToken& x) { return x.id; });
  d["text_index"] = column<std::int64_t>(t, [](const atlas::AtlasToken& x) { return x.text; });
  d["position"] = column<std::int64_t>(t, [](const atlas::AtlasToken& x) { return x.position; });
  d["begin"] = column<std::int64_t>(t, [](const atlas::AtlasToken& x) { return x.begin; });
  d["end"] = column<std::int64_t>(t, [](const atlas::AtlasToken& x) { return x.end; });
  py::list display;
  for (const auto& x : t) display.append(x.display);
  d["display"] = display;
  return d;
}

// --- Errors -------------------------------------------------------------------------------------

// Library errors as the Python package's exception classes (python/tokmap/_errors.py), with the
// CLI's message text: usage errors are ValueErrors; file problems OSErrors; the rest (bad file
// contents, bad data, numeric failures) ValueErrors too.
void raise_error(const Error& e) {
  const std::string message = e.what();
  if (e.kind() == ErrorKind::cancelled) {  // a stop that no kept Python error explains
    PyErr_SetString(PyExc_KeyboardInterrupt, message.c_str());
    return;
  }
  const char* kind = "InputError";
  if (e.kind() == ErrorKind::usage) {
    kind = "UsageError";
  } else {
    for (const char* marker :
         {": cannot open", ": cannot stat", ": cannot write", ": cannot map", ": write failed",
          ": cannot replace", ": cannot flush", ": cannot size", "does not exist", ": is a folder",
          ": cannot create", ": cannot rename", ": cannot remove", "not found; looked in"}) {
      if (message.find(marker) != std::string::npos) kind = "FileError";
    }
  }
  const py::object cls = py::module_::import("tokmap._errors").attr(kind);
  PyErr_SetString(cls.ptr(), message.c_str());
}

}  // namespace

PYBIND11_MODULE(_tokmap, m) {
  m.doc() = "tokmap's C++ library (internal: use the tokmap package)";
  m.attr("__version__") = TOKMAP_VERSION;

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Error& e) {
      raise_error(e);
    } catch (const Stopped&) {
      // Only reached when no Python error was kept (should not happen): say what it was.
      PyErr_SetString(PyExc_KeyboardInterrupt, "stopped");
    }
  });

  m.def(
      "_set_model_dirs",
      [](const std::vector<std::string>& dirs) {
        g_resolve.bundled_dirs.clear();
        for (const auto& d : dirs) g_resolve.bundled_dirs.emplace_back(d);
        g_resolve.bundled_dirs.emplace_back(TOKMAP_SOURCE_MODELS_DIR);
      },
      "Folders that hold the bundled models (before the source tree's models/).");

  // t-SNE of a C-contiguous float32 matrix, with TsneOptions built as `tokmap tsne` builds them
  // from its flags (src/cli/tsne_command.cpp library_options); the arguments are checked in
  // tokmap/_tsne.py.
  m.def(
      "_tsne",
      [](FloatMatrix x, int dims, double perplexity, std::uint64_t seed, int iterations,
         double early_exaggeration, double learning_rate, const std::string& method,
         const std::string& metric, int pca, const std::string& init,
         std::optional<FloatMatrix> init_array, double dof, int threads, py::object callback) {
        if (x.ndim() != 2) throw Error("X must be 2-D", ErrorKind::usage);
        const auto n = static_cast<std::size_t>(x.shape(0));
        const auto d = static_cast<std::size_t>(x.shape(1));
        tsne::TsneOptions t;
        t.dims = dims;
        t.perplexity = perplexity;
        t.seed = seed;
        t.iterations = iterations;
        t.early_exaggeration_iterations = std::min(250, iterations);
        t.early_exaggeration = early_exaggeration;
        t.learning_rate = learning_rate;  // <= 0: auto
        if (method == "auto")
          t.method = tsne::Method::automatic;
        else if (method == "exact")
          t.method = tsne::Method::exact;
        else if (method == "bh")
          t.method = tsne::Method::barnes_hut;
        else if (method == "fft")
          t.method = tsne::Method::fft;
        else
          throw Error("method must be auto, exact, bh or fft, got '" + method + "'",
                      ErrorKind::usage);
        if (metric == "euclidean")
          t.metric = neighbors::Metric::euclidean;
        else if (metric == "cosine")
          t.metric = neighbors::Metric::cosine;
        else
          throw Error("metric must be euclidean or cosine, got '" + metric + "'", ErrorKind::usage);
        t.pca_dims = pca;
        t.dof = dof;
        t.threads = threads;
        if (init == "pca") {
          t.init = tsne::Init::pca;
        } else if (init == "random") {
          t.init = tsne::Init::random;
        } else {
          t.init = tsne::Init::given;
          const auto& y0 = init_array.value();
          t.initial_embedding.assign(y0.data(), y0.data() + y0.size());
        }
        const std::span<const float> data(x.data(), n * d);
        Gate gate;
        const tsne::Callback on_report = [&](const tsne::IterationReport& r) {
          if (callback.is_none()) return !gate.stop_requested();
          bool go_on = true;
          const bool ok = gate.call([&] {
            py::dict report;
            report["iteration"] = r.iteration;
            report["total_iterations"] = r.total_iterations;
            report["kl"] = r.kl;
            report["kl_exact"] = r.kl_exact;
            report["early_exaggeration"] = r.early_exaggeration;
            report["embedding"] =
                to_array(std::vector<float>(r.embedding.begin(), r.embedding.end()),
                         {py::ssize_t(n), py::ssize_t(dims)});
            const py::object answer = callback(report);
            // Only an explicit False stops (None, the usual return of a function, goes on).
            if (py::isinstance<py::bool_>(answer) && !answer.cast<bool>()) go_on = false;
          });
          return ok && go_on;
        };
        const auto start = std::chrono::steady_clock::now();
        auto r = without_gil(gate, [&] { return tsne::run_tsne(data, n, d, t, on_report); });
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        py::dict out;
        out["seconds"] = seconds;  // inside the library: the benchmark's binding overhead
        out["embedding"] = to_array(r.embedding, {py::ssize_t(r.n), py::ssize_t(r.dims)});
        out["kl"] = r.kl;
        out["kl_uniform"] = r.kl_uniform;
        out["kl_exact"] = r.kl_exact;
        out["iterations"] = r.iterations;
        out["stopped"] = r.stopped;
        out["method"] = tsne::method_name(r.method);
        out["perplexity"] = r.perplexity;
        out["neighbors"] = r.neighbors;
        out["early_exaggeration"] = r.early_exaggeration;
        out["warnings"] = r.warnings;
        return out;
      },
      py::arg("x"), py::arg("dims"), py::arg("perplexity"), py::arg("seed"), py::arg("iterations"),
      py::arg("early_exaggeration"), py::arg("learning_rate"), py::arg("method"), py::arg("metric"),
      py::arg("pca"), py::arg("init"), py::arg("init_array"), py::arg("dof"), py::arg("threads"),
      py::arg("callback"));

  py::class_<Model>(m, "_Model")
      .def_property_readonly("name", [](const Model& self) { return self.loaded->name; })
      .def_property_readonly("path",
                             [](const Model& self) { return self.loaded->location.string(); })
      .def_property_readonly("n_layer",
                             [](const Model& self) { return self.loaded->model.config().n_layer; })
      .def_property_readonly("width",
                             [](const Model& self) { return self.loaded->model.config().n_embd; })
      .def_property_readonly(
          "n_positions", [](const Model& self) { return self.loaded->model.config().n_positions; })
      .def_property_readonly(
          "model_type", [](const Model& self) { return self.loaded->model.config().model_type; })
      .def_property_readonly(
          "vocab_size", [](const Model& self) { return self.loaded->model.config().vocab_size; })
      .def_property_readonly("parameter_count",
                             [](const Model& self) { return self.loaded->model.parameter_count(); })
      .def_property_readonly("has_tokenizer",
                             [](const Model& self) { return self.loaded->tokenizer.has_value(); })
      .def("tokenize",
           [](const Model& self, const std::vector<std::string>& texts, bool add_special_tokens,
              bool lossy, py::object warn) {
             Gate gate;
             const py::object no_progress = py::none();
             const auto hooks = python_hooks(gate, warn, no_progress);
             explore::EncodeOptions eo;
             eo.lossy = lossy;
             eo.add_special_tokens = add_special_tokens;
             const auto t = without_gil(
                 gate, [&] { return encode_all(self, make_texts(texts), eo, hooks, false); });
             return token_table(self, t);
           })
      .def("hidden_states",
           // As `tokmap embed` computes and stores them: (layers, N, width) over all tokens.
           [](const Model& self, const std::vector<std::string>& texts, const std::string& layers,
              bool add_special_tokens, bool lossy, int threads, int window_stride, py::object warn,
              py::object progress) {
             Gate gate;
             const py::object no_progress = py::none();
             const auto hooks = python_hooks(gate, warn, no_progress);
             explore::EncodeOptions eo;
             eo.lossy = lossy;
             eo.add_special_tokens = add_special_tokens;
             const auto& lm = *self.loaded;
             const auto selected = model::parse_layers(layers, lm.model.config().n_layer);
             const auto t = without_gil(
                 gate, [&] { return encode_all(self, make_texts(texts), eo, hooks, true); });
             const std::size_t width = std::size_t(lm.model.config().n_embd);
             std::vector<float> states(selected.size() * t.total * width);
             std::vector<std::size_t> start;
             std::vector<std::vector<std::int32_t>> ids;
             std::size_t total = 0;
             for (const auto& e : t.encodings) {
               start.push_back(total);
               total += e.ids.size();
               ids.push_back(e.ids);
             }
             without_gil(gate, [&] {
               model::ForwardOptions fo;
               fo.layers = selected;
               fo.threads = threads;
               fo.window_stride = window_stride;
               model::forward(
                   lm.model, ids, fo,
                   [&](const model::HiddenStates& h) {
                     const std::size_t row = start[h.text_index] + h.first_token;
                     for (std::size_t l = 0; l < h.layers.size(); ++l)
                       std::copy(h.layers[l].begin(), h.layers[l].end(),
                                 states.begin() + std::ptrdiff_t((l * total + row) * width));
                   },
                   [&](std::size_t done, std::size_t all) {
                     if (progress.is_none() ? gate.stop_requested()
                                            : !gate.call([&] { progress("embed", done, all); }))
                       throw Stopped();
                   });
               return 0;
             });
             py::dict out = token_table(self, t);
             out["states"] = to_array(
                 states, {py::ssize_t(selected.size()), py::ssize_t(total), py::ssize_t(width)});
             out["layers"] = selected;
             return out;
           });

  m.def(
      "_load_model",
      [](const std::string& spec) {
        Gate gate;
        const explore::LoadedModel* loaded =
            without_gil(gate, [&] { return &engine().load(spec); });
        return Model{loaded};
      },
      py::arg("spec"));

  py::class_<Report>(m, "_Report")
      .def_property_readonly("title", [](const Report& r) { return r.result.data.title; })
      .def_property_readonly("created_with",
                             [](const Report& r) { return r.result.data.created_with; })
      .def_property_readonly("texts", [](const Report& r) { return r.result.data.texts; })
      .def_property_readonly("models", [](const Report& r) { return r.result.data.models; })
      .def_property_readonly("layers", [](const Report& r) { return r.result.data.layers; })
      .def_property_readonly("perplexities",
                             [](const Report& r) { return r.result.data.perplexities; })
      .def_property_readonly("dims", [](const Report& r) { return r.result.data.dims; })
      .def_property_readonly("warnings", [](const Report& r) { return r.result.warnings; })
      .def_property_readonly("seconds", [](const Report& r) { return r.result.seconds; })
      .def_property_readonly("summary", [](const Report& r) { return explore::summary(r.result); })
      .def_property_readonly(
          "degenerate", [](const Report& r) { return explore::degenerate_maps(r.result.data); })
      .def("tokens", [](const Report& r) { return tokens_of(r.result.data); })
      .def("maps", [](const Report& r) { return maps_of(r.result.data); })
      .def("states", [](const Report& r) { return states_of(r.result); })
      .def("set_created_with",
           [](Report& r, const std::string& line) { r.result.data.created_with = line; })
      .def("data_json", [](const Report& r) { return report::to_json(r.result.data); })
      .def("html", [](const Report& r) { return py::bytes(page_html(r.result.data)); })
      .def("save",
           // All or nothing, as viz --out: built in a staging folder beside `folder`, renamed
           // into place when complete.
           [](const Report& r, const std::string& folder, bool figures, int threads) {
             Gate gate;
             without_gil(gate, [&] {
               io::StagingFolder staging(folder);
               explore::WriteOptions wo;
               wo.figures = figures;
               wo.threads = threads;
               explore::write_report(staging.path(), r.result, wo);
               if (gate.stop_requested()) throw Stopped();
               staging.commit();
               return 0;
             });
           });

  m.def(
      "_viz",
      [](const std::vector<std::string>& texts, const std::vector<std::string>& models,
         const std::string& layers, const std::vector<int>& dims,
         const std::vector<double>& perplexities, std::uint64_t seed, int seeds,
         const std::string& metric, const std::string& normalize, bool exclude_first,
         bool logit_lens, const std::vector<std::string>& highlight, int iterations, int threads,
         bool lossy, py::object warn, py::object progress) {
        explore::VizOptions o;
        o.models = models;
        o.layers = layers;
        o.dims = dims;
        o.perplexities = perplexities;
        o.seed = seed;
        o.seeds = seeds;
        o.metric = metric;
        o.normalize = normalize;
        o.exclude_first = exclude_first;
        o.logit_lens = logit_lens;
        o.highlight = highlight;
        o.iterations = iterations;
        o.threads = threads;
        o.encode.lossy = lossy;
        Gate gate;
        const auto hooks = python_hooks(gate, warn, progress);
        auto report = std::make_unique<Report>();
        report->result = without_gil(gate, [&] {
          explore::validate(o);
          const auto t = make_texts(texts);
          auto result = explore::run(engine(), t, o, hooks);
          if (gate.stop_requested()) throw Stopped();
          return result;
        });
        // data.created_with is set by the caller, which knows how it was asked (the command line
        // that makes the same report).
        return report;
      },
      py::arg("texts"), py::arg("models"), py::arg("layers"), py::arg("dims"),
      py::arg("perplexities"), py::arg("seed"), py::arg("seeds"), py::arg("metric"),
      py::arg("normalize"), py::arg("exclude_first"), py::arg("logit_lens"), py::arg("highlight"),
      py::arg("iterations"), py::arg("threads"), py::arg("lossy"), py::arg("warn"),
      py::arg("progress"));

  // viz --atlas: `atlas` is a file name or an atlas already in memory (named `name` in messages).
  m.def("_viz_atlas", [](const std::vector<std::string>& texts, py::object atlas,
                         const std::string& name, const std::string& model, bool exclude_first,
                         int threads, bool lossy, py::object warn, py::object progress) {
    explore::AtlasVizOptions o;
    o.model = model;
    o.exclude_first = exclude_first;
    o.threads = threads;
    o.encode.lossy = lossy;
    const atlas::Atlas* loaded =
        py::isinstance<atlas::Atlas>(atlas) ? &atlas.cast<const atlas::Atlas&>() : nullptr;
    const std::string file = loaded ? std::string() : atlas.cast<std::string>();
    Gate gate;
    const auto hooks = python_hooks(gate, warn, progress);
    auto report = std::make_unique<Report>();
    report->result = without_gil(gate, [&] {
      const auto t = make_texts(texts);
      auto result = loaded ? explore::run_atlas(engine(), t, *loaded, name, o, hooks)
                           : explore::run_atlas(engine(), t, file, o, hooks);
      if (gate.stop_requested()) throw Stopped();
      return result;
    });
    return report;
  });

  py::class_<atlas::Atlas>(m, "_Atlas")
      .def_readonly("model", &atlas::Atlas::model)
      .def_readonly("metric", &atlas::Atlas::metric)
      .def_readonly("normalize", &atlas::Atlas::normalize)
      .def_readonly("width", &atlas::Atlas::width)
      .def_readonly("rank", &atlas::Atlas::rank)
      .def_readonly("n", &atlas::Atlas::n)
      .def_readonly("perplexity", &atlas::Atlas::perplexity)
      .def_readonly("confidence_k", &atlas::Atlas::confidence_k)
      .def_readonly("seed", &atlas::Atlas::seed)
      .def_readonly("texts", &atlas::Atlas::texts)
      .def_readonly("provenance", &atlas::Atlas::provenance)
      .def_property_readonly("layers",
                             [](const atlas::Atlas& a) {
                               std::vector<int> l;
                               for (const auto& x : a.layers) l.push_back(x.layer);
                               return l;
                             })
      .def("tokens", &atlas_tokens)
      .def("maps",
           [](const atlas::Atlas& a) {
             py::list out;
             for (const auto& l : a.layers) {
               for (const auto& map : l.maps) {
                 py::dict d;
                 d["layer"] = l.layer;
                 d["dims"] = map.dims;
                 d["kl"] = map.kl;
                 d["coords"] = to_array(map.coords, {py::ssize_t(a.n), py::ssize_t(map.dims)});
                 d["calibration"] =
                     to_array(map.calibration, {py::ssize_t(map.calibration.size())});
                 out.append(d);
               }
             }
             return out;
           })
      .def("save",
           [](const atlas::Atlas& a, const std::string& path) {
             Gate gate;
             without_gil(gate, [&] {
               atlas::write(path, a);
               return 0;
             });
           })
      .def("place",
           // `tokmap atlas place`: one row per (layer, map, placed token), with the map's
           // coordinates and the placement confidence.
           [](const atlas::Atlas& a, const std::vector<std::string>& texts, py::object model,
              int iterations, bool lossy, int threads, py::object warn) {
             Gate gate;
             const py::object no_progress = py::none();
             const auto hooks = python_hooks(gate, warn, no_progress);
             const auto& lm = model_for(model, a.model);
             if (static_cast<std::size_t>(lm.model.config().n_embd) != a.width)
               throw Error("model " + lm.name + " has width " +
                               std::to_string(lm.model.config().n_embd) +
                               " but the atlas was built with width " + std::to_string(a.width),
                           ErrorKind::usage);
             std::vector<int> layers;
             for (const auto& l : a.layers) {
               if (l.layer > lm.model.config().n_layer)
                 throw Error(
                     "atlas layer " + std::to_string(l.layer) + " is beyond the model's layers",
                     ErrorKind::usage);
               layers.push_back(l.layer);
             }
             explore::EncodeOptions eo;
             eo.lossy = lossy;
             atlas::PlaceOptions po;
             po.iterations = iterations;
             po.threads = threads;
             Embedded e;
             std::vector<std::vector<atlas::Placement>> placed;
             without_gil(gate, [&] {
               const Tokens t = encode_all(Model{&lm}, make_texts(texts), eo, hooks, false);
               e = embed_tokens(lm, t.encodings, layers, threads, SIZE_MAX, true, gate);
               for (std::size_t l = 0; l < layers.size(); ++l) {
                 if (gate.stop_requested()) throw Stopped();
                 placed.push_back(atlas::place(a, l, e.states[l], e.tokens.size(), po));
               }
               return 0;
             });
             const auto m = static_cast<py::ssize_t>(e.tokens.size());
             py::list out;
             for (std::size_t l = 0; l < layers.size(); ++l) {
               for (const auto& p : placed[l]) {
                 py::dict d;
                 d["layer"] = p.layer;
                 d["dims"] = p.dims;
                 d["coords"] = to_array(p.coords, {m, py::ssize_t(p.dims)});
                 d["confidence"] = to_array(p.confidence, {m});
                 d["overlap"] = to_array(p.overlap, {m});
                 out.append(d);
               }
             }
             atlas::Atlas tokens_only;
             tokens_only.tokens = e.tokens;
             py::dict result;
             result["tokens"] = atlas_tokens(tokens_only);
             result["maps"] = out;
             return result;
           });

  m.def("_read_atlas", [](const std::string& path) {
    Gate gate;
    return without_gil(gate, [&] { return atlas::read(path); });
  });

  m.def(
      "_build_atlas",
      // `tokmap atlas build`: the corpus's tokens (each text's first left out) embedded in one
      // forward pass, then atlas::build with the same options.
      [](const std::vector<std::string>& texts, py::object model, const std::string& layers,
         const std::vector<int>& dims, double perplexity, int rank, const std::string& metric,
         int iterations, std::uint64_t seed, std::size_t max_tokens, const std::string& provenance,
         bool lossy, int threads, py::object warn, py::object progress) {
        Gate gate;
        const py::object no_progress = py::none();
        const auto hooks = python_hooks(gate, warn, no_progress);
        const auto& lm = model_for(model, "");
        const auto selected = model::parse_layers(layers, lm.model.config().n_layer);
        explore::EncodeOptions eo;
        eo.lossy = lossy;
        atlas::BuildOptions b;
        b.dims = dims;
        b.perplexity = perplexity;
        b.rank = rank;
        b.metric = metric;
        b.iterations = iterations;
        b.seed = seed;
        b.threads = threads;
        return without_gil(gate, [&] {
          const auto source = make_texts(texts);
          const Tokens t = encode_all(Model{&lm}, source, eo, hooks, false);
          auto e = embed_tokens(lm, t.encodings, selected, threads, max_tokens, false, gate);
          auto a = atlas::build(e.states, selected, e.tokens.size(), e.width, b,
                                [&](std::size_t done, std::size_t total) {
                                  if (progress.is_none() ? gate.stop_requested() : !gate.call([&] {
                                        progress("atlas", done, total);
                                      }))
                                    throw Stopped();
                                });
          a.model = lm.name;
          const std::size_t used = e.tokens.empty() ? 0 : std::size_t(e.tokens.back().text) + 1;
          for (std::size_t i = 0; i < used; ++i) a.texts.push_back(source[i].text);
          a.tokens = std::move(e.tokens);
          a.provenance = provenance;
          return a;
        });
      });
}
