// tokmap serve: routes, request checking, the job queue and the security checks (docs/SERVE.md).
#include "serve/serve.hpp"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <thread>

#include "atlas/atlas.hpp"
#include "core/error.hpp"
#include "explore/explore.hpp"
#include "io/json.hpp"
#include "report/report.hpp"

namespace tokmap::serve {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// An error with the HTTP status it answers with; only ever thrown inside a handler.
struct HttpError {
  int status;
  std::string message;
};

[[noreturn]] void fail(int status, std::string message) {
  throw HttpError{status, std::move(message)};
}

std::string error_json(const std::string& message) {
  return json{{"error", message}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

void send_json(httplib::Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_content(body, "application/json");
}

// --- Request bodies ----------------------------------------------------------------------------

struct Limits {
  std::size_t max_text_bytes, max_texts;
  int max_iterations;
};

// A field of an object, checked for its type; absent or null gives nullopt.
const json* field(const json& body, const char* name) {
  const auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string get_string(const json& body, const char* name, std::string fallback) {
  const json* v = field(body, name);
  if (v == nullptr) return fallback;
  if (!v->is_string()) fail(400, std::string("\"") + name + "\" must be a string");
  return v->get<std::string>();
}

bool get_bool(const json& body, const char* name, bool fallback) {
  const json* v = field(body, name);
  if (v == nullptr) return fallback;
  if (!v->is_boolean()) fail(400, std::string("\"") + name + "\" must be true or false");
  return v->get<bool>();
}

std::int64_t get_int(const json& body, const char* name, std::int64_t fallback, std::int64_t lo,
                     std::int64_t hi) {
  const json* v = field(body, name);
  if (v == nullptr) return fallback;
  if (!v->is_number_integer() && !v->is_number_unsigned())
    fail(400, std::string("\"") + name + "\" must be an integer");
  if (v->is_number_unsigned() && v->get<std::uint64_t>() > static_cast<std::uint64_t>(hi))
    fail(400, std::string("\"") + name + "\" must be at most " + std::to_string(hi));
  const auto x = v->get<std::int64_t>();
  if (x < lo || x > hi)
    fail(400, std::string("\"") + name + "\" must be in [" + std::to_string(lo) + ", " +
                  std::to_string(hi) + "]");
  return x;
}

std::vector<std::string> get_strings(const json& body, const char* name) {
  const json* v = field(body, name);
  std::vector<std::string> out;
  if (v == nullptr) return out;
  if (!v->is_array()) fail(400, std::string("\"") + name + "\" must be an array of strings");
  for (const auto& item : *v) {
    if (!item.is_string()) fail(400, std::string("\"") + name + "\" must be an array of strings");
    out.push_back(item.get<std::string>());
  }
  return out;
}

void only_fields(const json& body, std::initializer_list<const char*> names) {
  for (const auto& item : body.items()) {
    const std::string& key = item.key();
    if (std::find_if(names.begin(), names.end(), [&](const char* n) { return key == n; }) ==
        names.end())
      fail(400, "unknown field \"" + key + "\"");
  }
}

std::vector<explore::Text> get_texts(const json& body, const Limits& limits) {
  const json* v = field(body, "texts");
  if (v == nullptr) fail(400, "\"texts\" is required: an array of strings");
  const auto texts = get_strings(body, "texts");
  if (texts.empty()) fail(400, "\"texts\" is empty: give at least one text");
  if (texts.size() > limits.max_texts)
    fail(413, std::to_string(texts.size()) + " texts; this server takes at most " +
                  std::to_string(limits.max_texts));
  std::size_t bytes = 0;
  std::vector<explore::Text> out;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    bytes += texts[i].size();
    out.push_back({texts[i], "texts[" + std::to_string(i) + "]"});
  }
  if (bytes > limits.max_text_bytes)
    fail(413, "the texts have " + std::to_string(bytes) + " bytes; this server takes at most " +
                  std::to_string(limits.max_text_bytes));
  return out;
}

// A JSON body: an object, or a 400 naming the problem.
json parse_body(const httplib::Request& req) {
  const std::string type = req.get_header_value("Content-Type");
  if (type.rfind("application/json", 0) != 0)
    fail(415, "the body must be JSON (Content-Type: application/json)");
  json body;
  try {
    // Strict: a key given twice is an error, not silently the last value.
    body = io::parse_json(req.body, "the request body");
  } catch (const Error& e) {
    fail(400, e.what());
  }
  if (!body.is_object()) fail(400, "the body must be a JSON object");
  return body;
}

// --- Jobs --------------------------------------------------------------------------------------

enum class Status { queued, running, done, failed, cancelled };

const char* status_name(Status s) {
  switch (s) {
    case Status::queued:
      return "queued";
    case Status::running:
      return "running";
    case Status::done:
      return "done";
    case Status::failed:
      return "failed";
    case Status::cancelled:
      return "cancelled";
  }
  return "?";
}

// What a job computes: the response body, and for map jobs the report data (a later run may
// start from its layout).
struct Output {
  std::string body;
  std::shared_ptr<const report::ReportData> data;
};
using Work = std::function<Output(const explore::Hooks&)>;

struct Job {
  std::string id;
  std::string kind;
  Work work;  // computes the answer from the loaded models
  std::atomic<bool> cancel{false};
  Clock::time_point deadline{};

  std::mutex mutex;
  std::condition_variable changed;
  Status status = Status::queued;
  int version = 0;  // bumped on every change, for the event stream
  std::string stage;
  std::size_t done = 0, total = 0;
  std::vector<std::string> warnings;
  std::string result;                              // the response body when done
  std::shared_ptr<const report::ReportData> data;  // map jobs, when done
  std::string error;
  int error_status = 0;
  double seconds = 0;

  bool finished() const { return status != Status::queued && status != Status::running; }
  // Under the lock.
  json state() const {
    json j{{"id", id},     {"kind", kind},   {"status", status_name(status)}, {"stage", stage},
           {"done", done}, {"total", total}, {"warnings", warnings},          {"seconds", seconds}};
    if (!error.empty()) j["error"] = error;
    return j;
  }
};

std::string random_hex(std::size_t bytes) {
  std::random_device device;
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < bytes; ++i) {
    const auto b = device() & 0xff;
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

// Host header or Origin authority → lower-case host name without port or brackets.
std::string host_name(std::string authority) {
  std::transform(authority.begin(), authority.end(), authority.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    return close == std::string::npos ? authority : authority.substr(1, close - 1);
  }
  const auto colon = authority.find(':');
  return colon == std::string::npos ? authority : authority.substr(0, colon);
}

std::string authority_port(const std::string& authority) {
  const auto close = authority.find(']');
  const auto colon = authority.find(':', close == std::string::npos ? 0 : close);
  return colon == std::string::npos ? std::string() : authority.substr(colon + 1);
}

bool same_secret(const std::string& a, const std::string& b) {
  // Constant time in the length of the expected token.
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < b.size(); ++i)
    diff |= static_cast<unsigned char>((i < a.size() ? a[i] : 0) ^ b[i]);
  return diff == 0;
}

}  // namespace

std::string make_token() { return random_hex(16); }

bool is_loopback(const std::string& host) {
  std::string h = host;
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  std::transform(h.begin(), h.end(), h.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (h == "localhost" || h == "ip6-localhost") return true;
  // An address, parsed: "127.0.0.1.evil.example" is a name, not 127/8.
  in_addr v4{};
  if (::inet_pton(AF_INET, h.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (::inet_pton(AF_INET6, h.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

struct Server::State {
  ServeOptions options;
  explore::Engine engine;
  struct Model {
    std::string spec, name;
    const explore::LoadedModel* loaded;
  };
  std::vector<Model> models;
  struct LoadedAtlas {
    std::string name;
    std::filesystem::path path;
    atlas::Atlas atlas;
  };
  std::vector<LoadedAtlas> atlases;
  httplib::Server http;
  int port = 0;
  int listen_socket = -1;  // the socket httplib last created to listen on

  std::mutex jobs_mutex;
  std::condition_variable jobs_changed;
  std::deque<std::shared_ptr<Job>> queue;  // waiting to run
  std::shared_ptr<Job> running;
  std::map<std::string, std::shared_ptr<Job>> jobs;  // by id: queued, running and kept
  std::deque<std::string> finished;                  // ids, oldest first
  bool stopping = false;
  std::thread worker;  // started and joined by run() only
  // Whether run() is serving: the destructor waits for it to return rather than join the
  // worker itself (two threads joining one std::thread is undefined; the fuzz target hit it).
  std::mutex run_mutex;
  std::condition_variable run_changed;
  bool in_run = false;

  explicit State(ServeOptions o) : options(std::move(o)), engine(options.resolve) {}

  Limits limits() const {
    return {options.max_text_bytes, options.max_texts, options.max_iterations};
  }

  const Model& find_model(const std::string& name) const {
    if (name.empty()) return models.front();
    for (const auto& m : models)
      if (m.name == name || m.spec == name) return m;
    std::string known;
    for (const auto& m : models) known += (known.empty() ? "" : ", ") + m.name;
    fail(400, "unknown model \"" + name + "\"; this server has: " + known);
  }

  const LoadedAtlas& find_atlas(const std::string& name) const {
    if (atlases.empty()) fail(400, "this server has no atlas (start it with --atlas FILE)");
    if (name.empty()) {
      if (atlases.size() == 1) return atlases.front();
      fail(400, "\"atlas\" is required: this server has " + std::to_string(atlases.size()));
    }
    for (const auto& a : atlases)
      if (a.name == name) return a;
    std::string known;
    for (const auto& a : atlases) known += (known.empty() ? "" : ", ") + a.name;
    fail(400, "unknown atlas \"" + name + "\"; this server has: " + known);
  }

  // --- What a request asks for, checked before it is queued --------------------------------------

  Work map_work(const json& body) {
    only_fields(body, {"texts", "model", "models", "layers", "dims", "perplexity", "seed", "seeds",
                       "metric", "normalize", "iterations", "highlight", "logit_lens",
                       "exclude_first", "lossy", "kind", "init_from"});
    auto texts = get_texts(body, limits());
    explore::VizOptions o;
    if (field(body, "models") != nullptr && field(body, "model") != nullptr)
      fail(400, "give \"model\" or \"models\", not both");
    std::vector<std::string> names = get_strings(body, "models");
    if (field(body, "models") != nullptr && names.empty())
      fail(400, "\"models\" is empty: give at least one model name");
    if (names.empty()) names.push_back(get_string(body, "model", ""));
    for (const auto& name : names) o.models.push_back(find_model(name).spec);
    if (const json* layers = field(body, "layers")) {
      if (layers->is_string()) {
        o.layers = layers->get<std::string>();
        if (o.layers != "all" && o.layers != "last")
          fail(400, "\"layers\" must be \"all\", \"last\" or an array of layer numbers");
      } else if (layers->is_array() && !layers->empty()) {
        o.layers.clear();
        for (const auto& l : *layers) {
          if (!l.is_number_integer())
            fail(400, "\"layers\" must be \"all\", \"last\" or an array of layer numbers");
          o.layers += (o.layers.empty() ? "" : ",") + std::to_string(l.get<int>());
        }
      } else {
        fail(400, "\"layers\" must be \"all\", \"last\" or an array of layer numbers");
      }
    }
    if (const json* dims = field(body, "dims")) {
      if (!dims->is_array() || dims->empty()) fail(400, "\"dims\" must be [2], [3] or [2, 3]");
      o.dims.clear();
      for (const auto& d : *dims) {
        if (!d.is_number_integer() || (d.get<int>() != 2 && d.get<int>() != 3))
          fail(400, "\"dims\" must be [2], [3] or [2, 3]");
        if (std::find(o.dims.begin(), o.dims.end(), d.get<int>()) == o.dims.end())
          o.dims.push_back(d.get<int>());
      }
      std::sort(o.dims.begin(), o.dims.end());
    }
    if (const json* p = field(body, "perplexity")) {
      const auto add = [&](const json& x) {
        if (!x.is_number())
          fail(400, "\"perplexity\" must be null, a number or an array of numbers");
        o.perplexities.push_back(x.get<double>());
      };
      if (p->is_array()) {
        if (p->size() > 5) fail(413, "at most 5 perplexities per request");
        for (const auto& x : *p) add(x);
      } else {
        add(*p);
      }
    }
    o.seed = static_cast<std::uint64_t>(get_int(body, "seed", 0, 0, INT64_MAX));
    o.seeds = static_cast<int>(get_int(body, "seeds", 1, 1, 10));
    o.iterations =
        static_cast<int>(get_int(body, "iterations", o.iterations, 1, options.max_iterations));
    o.metric = get_string(body, "metric", o.metric);
    o.normalize = get_string(body, "normalize", o.normalize);
    o.highlight = get_strings(body, "highlight");
    o.logit_lens = get_bool(body, "logit_lens", o.logit_lens);
    o.exclude_first = get_bool(body, "exclude_first", o.exclude_first);
    o.encode.lossy = get_bool(body, "lossy", false);
    o.threads = options.threads;
    try {
      explore::validate(o);
    } catch (const Error& e) {
      fail(400, e.what());
    }
    if (const json* from = field(body, "init_from")) {
      if (!from->is_string()) fail(400, "\"init_from\" must be a job id");
      auto earlier = find_job(from->get<std::string>());
      std::lock_guard<std::mutex> lock(earlier->mutex);
      if (earlier->data == nullptr)
        fail(409, "job " + earlier->id + " has no finished map to start from");
      o.previous = earlier->data;
    }
    return [this, texts = std::move(texts), o](const explore::Hooks& hooks) {
      explore::Result result = explore::run(engine, texts, o, hooks);
      result.data.created_with = "tokmap serve";
      auto data = std::make_shared<report::ReportData>(std::move(result.data));
      return Output{report::to_json(*data), std::move(data)};
    };
  }

  Work place_work(const json& body, bool report) {
    only_fields(body, {"atlas", "texts", "model", "exclude_first", "lossy", "kind"});
    auto texts = get_texts(body, limits());
    const LoadedAtlas& a = find_atlas(get_string(body, "atlas", ""));
    explore::AtlasVizOptions o;
    const std::string model = get_string(body, "model", "");
    o.model = model.empty() ? std::string() : find_model(model).spec;
    if (o.model.empty()) {
      // The atlas's own model must be one the server loaded: a request never loads one.
      const auto own = std::find_if(models.begin(), models.end(),
                                    [&](const Model& m) { return m.name == a.atlas.model; });
      if (own == models.end())
        fail(400, "atlas \"" + a.name + "\" was built with " + a.atlas.model +
                      ", which this server did not load (start it with --model " + a.atlas.model +
                      ")");
      o.model = own->spec;
    }
    o.exclude_first = get_bool(body, "exclude_first", o.exclude_first);
    o.encode.lossy = get_bool(body, "lossy", false);
    o.threads = options.threads;
    const LoadedAtlas* atlas = &a;
    if (report) {
      return [this, texts = std::move(texts), o, atlas](const explore::Hooks& hooks) {
        explore::Result result =
            explore::run_atlas(engine, texts, atlas->atlas, atlas->name, o, hooks);
        result.data.created_with = "tokmap serve";
        return Output{report::to_json(result.data), nullptr};
      };
    }
    return [this, texts = std::move(texts), o, atlas](const explore::Hooks& hooks) {
      const explore::Placed placed =
          explore::place(engine, texts, atlas->atlas, atlas->name, o, hooks);
      const tokenizer::Tokenizer* tok =
          placed.model->tokenizer ? &*placed.model->tokenizer : nullptr;
      json tokens = json::array();
      for (const auto& point : placed.points) {
        const auto& encoding = placed.encodings[point.text];
        const std::size_t p = point.positions[0].front();
        tokens.push_back({{"text", point.text},
                          {"position", p},
                          {"id", encoding.ids[p]},
                          {"display", explore::display_token(tok, encoding.ids[p])},
                          {"offset", {encoding.offsets[p].first, encoding.offsets[p].second}}});
      }
      json maps = json::array();
      for (const auto& m : placed.maps) {
        maps.push_back({{"layer", m.layer},
                        {"dims", m.dims},
                        {"coords", io::json_floats(m.coords, 7)},
                        {"confidence", io::json_floats(m.confidence, 7)}});
      }
      std::vector<std::string> text_list;
      for (const auto& t : texts) text_list.push_back(t.text);
      const json answer{{"atlas", atlas->name}, {"model", placed.model->name},
                        {"texts", text_list},   {"tokens", tokens},
                        {"maps", maps},         {"seconds", placed.seconds}};
      return Output{answer.dump(-1, ' ', false, json::error_handler_t::replace), nullptr};
    };
  }

  // --- The queue -------------------------------------------------------------------------------

  std::shared_ptr<Job> submit(std::string kind, Work work) {
    auto job = std::make_shared<Job>();
    job->kind = std::move(kind);
    job->work = std::move(work);
    std::lock_guard<std::mutex> lock(jobs_mutex);
    if (stopping) fail(503, "the server is shutting down");
    const std::size_t busy = queue.size() + (running ? 1 : 0);
    if (busy >= options.max_queue)
      fail(503, "busy: " + std::to_string(busy) + " jobs queued or running (at most " +
                    std::to_string(options.max_queue) + "); try again shortly");
    do {
      job->id = random_hex(8);
    } while (jobs.count(job->id) != 0);
    jobs[job->id] = job;
    queue.push_back(job);
    jobs_changed.notify_all();
    return job;
  }

  std::shared_ptr<Job> find_job(const std::string& id) {
    std::lock_guard<std::mutex> lock(jobs_mutex);
    const auto it = jobs.find(id);
    if (it == jobs.end()) fail(404, "no job \"" + id + "\" (finished jobs are kept for a while)");
    return it->second;
  }

  void work_loop() {
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(jobs_mutex);
        jobs_changed.wait(lock, [&] { return stopping || !queue.empty(); });
        if (stopping) {
          // Nothing more runs: every waiting request is answered.
          for (auto& waiting : queue) {
            std::lock_guard<std::mutex> job_lock(waiting->mutex);
            waiting->status = Status::cancelled;
            waiting->error = "the server is shutting down";
            waiting->error_status = 503;
            ++waiting->version;
            waiting->changed.notify_all();
          }
          queue.clear();
          return;
        }
        job = queue.front();
        queue.pop_front();
        running = job;
      }
      run_job(*job);
      std::lock_guard<std::mutex> lock(jobs_mutex);
      running.reset();
      finished.push_back(job->id);
      while (finished.size() > options.kept_jobs) {
        jobs.erase(finished.front());
        finished.pop_front();
      }
    }
  }

  void run_job(Job& job) {
    const auto start = Clock::now();
    {
      std::lock_guard<std::mutex> lock(job.mutex);
      job.deadline = start + std::chrono::milliseconds(
                                 static_cast<std::int64_t>(options.job_seconds * 1000.0));
      job.status = job.cancel ? Status::cancelled : Status::running;
      if (job.cancel) job.error = "cancelled";
      ++job.version;
    }
    job.changed.notify_all();
    if (job.cancel) return;
    explore::Hooks hooks;
    hooks.warn = [&](std::string_view message) {
      std::lock_guard<std::mutex> lock(job.mutex);
      job.warnings.emplace_back(message);
      ++job.version;
      job.changed.notify_all();
    };
    hooks.progress = [&](std::string_view what, std::size_t done, std::size_t total) {
      std::lock_guard<std::mutex> lock(job.mutex);
      job.stage = what;
      job.done = done;
      job.total = total;
      ++job.version;
      job.changed.notify_all();
    };
    const auto deadline = job.deadline;
    hooks.cancelled = [&job, deadline] { return job.cancel.load() || Clock::now() > deadline; };
    Status status = Status::done;
    Output result;
    std::string error;
    int error_status = 0;
    try {
      result = job.work(hooks);
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::cancelled) {
        status = Status::cancelled;
        if (server_stopping()) {
          error = "the server is shutting down";
          error_status = 503;
        } else if (!job.cancel && Clock::now() > deadline) {
          error = "the job ran longer than this server's limit of " +
                  std::to_string(static_cast<int>(options.job_seconds)) + " s";
          error_status = 503;
        } else {
          error = "cancelled";
          error_status = 409;
        }
      } else {
        status = Status::failed;
        error = e.what();
        error_status = e.kind() == ErrorKind::usage ? 400 : 422;
      }
    } catch (const std::bad_alloc&) {
      status = Status::failed;
      error = "out of memory";
      error_status = 503;
    } catch (const std::exception& e) {
      status = Status::failed;
      error = e.what();
      error_status = 500;
    }
    {
      std::lock_guard<std::mutex> lock(job.mutex);
      job.status = status;
      job.result = std::move(result.body);
      job.data = std::move(result.data);
      job.error = std::move(error);
      job.error_status = error_status;
      job.seconds = std::chrono::duration<double>(Clock::now() - start).count();
      job.work = nullptr;  // frees what the request held
      ++job.version;
    }
    job.changed.notify_all();
  }

  // Waits for a job to finish (or the server to stop) and answers with its result or error.
  void answer(const std::shared_ptr<Job>& job, httplib::Response& res) {
    std::unique_lock<std::mutex> lock(job->mutex);
    job->changed.wait(lock, [&] { return job->finished(); });
    send_outcome(*job, res);
  }

  // A finished job's answer (under its lock): the result, or its error with its status.
  static void send_outcome(const Job& job, httplib::Response& res) {
    if (job.status == Status::done) {
      send_json(res, 200, job.result);
    } else {
      send_json(res, job.error_status == 0 ? 500 : job.error_status, error_json(job.error));
    }
  }

  void cancel_all() {
    std::lock_guard<std::mutex> lock(jobs_mutex);
    stopping = true;
    for (auto& [id, job] : jobs) job->cancel = true;
    jobs_changed.notify_all();
  }

  // --- Security: every request passes here first -------------------------------------------------

  bool host_allowed(const std::string& name) const {
    if (is_loopback(name)) return true;
    if (name == host_name(options.host) && options.host != "0.0.0.0" && options.host != "::")
      return true;
    return std::find(options.allowed_hosts.begin(), options.allowed_hosts.end(), name) !=
           options.allowed_hosts.end();
  }

  // nullopt: go on; otherwise the refusal already written into res.
  bool refuse(const httplib::Request& req, httplib::Response& res) {
    const std::string host = req.get_header_value("Host");
    if (host.empty() || !host_allowed(host_name(host))) {
      send_json(res, 403,
                error_json("Host \"" + host +
                           "\" is not this server's (DNS rebinding protection; --allow-host "
                           "NAME admits another name)"));
      return true;
    }
    if (req.has_header("Origin")) {
      const std::string origin = req.get_header_value("Origin");
      const std::string prefix = "http://";
      const std::string authority =
          origin.rfind(prefix, 0) == 0 ? origin.substr(prefix.size()) : std::string();
      const std::string port = authority_port(authority);
      if (authority.empty() || !host_allowed(host_name(authority)) ||
          port != std::to_string(this->port)) {
        send_json(res, 403, error_json("Origin \"" + origin + "\" is not this server's page"));
        return true;
      }
    }
    if (!options.token.empty()) {
      std::string given = req.get_param_value("token");
      const std::string auth = req.get_header_value("Authorization");
      if (given.empty() && auth.rfind("Bearer ", 0) == 0) given = auth.substr(7);
      if (given.empty()) {
        const std::string cookies = req.get_header_value("Cookie");
        const std::string key = "tokmap_token=";
        const auto at = cookies.find(key);
        if (at != std::string::npos) {
          const auto end = cookies.find(';', at);
          given = cookies.substr(at + key.size(), end == std::string::npos ? std::string::npos
                                                                           : end - at - key.size());
        }
      }
      if (!same_secret(given, options.token)) {
        send_json(res, 401,
                  error_json("this server needs its access token: open the address it printed "
                             "(?token=...), or send Authorization: Bearer TOKEN"));
        return true;
      }
    }
    return false;
  }

  // --- Routes ----------------------------------------------------------------------------------

  json health() const {
    json ms = json::array();
    for (const auto& m : models) {
      const auto& config = m.loaded->model.config();
      ms.push_back({{"name", m.name},
                    {"architecture", config.model_type},
                    {"layers", config.n_layer},
                    {"width", config.n_embd},
                    {"tokenizer", m.loaded->tokenizer.has_value()},
                    {"logit_lens", explore::has_logit_lens(*m.loaded)}});
    }
    json as = json::array();
    for (const auto& a : atlases) {
      json layers = json::array(), dims = json::array();
      for (const auto& l : a.atlas.layers) layers.push_back(l.layer);
      for (const auto& m : a.atlas.layers.front().maps) dims.push_back(m.dims);
      as.push_back({{"name", a.name},
                    {"model", a.atlas.model},
                    {"tokens", a.atlas.n},
                    {"layers", layers},
                    {"dims", dims},
                    {"perplexity", a.atlas.perplexity}});
    }
    return {{"status", "ok"},
            {"api", 1},
            {"models", ms},
            {"atlases", as},
            {"limits",
             {{"max_body_bytes", options.max_body_bytes},
              {"max_text_bytes", options.max_text_bytes},
              {"max_texts", options.max_texts},
              {"max_iterations", options.max_iterations},
              {"job_seconds", options.job_seconds},
              {"max_queue", options.max_queue}}}};
  }

  template <typename Handler>
  httplib::Server::Handler guarded(Handler handler) {
    return [handler](const httplib::Request& req, httplib::Response& res) {
      try {
        handler(req, res);
      } catch (const HttpError& e) {
        send_json(res, e.status, error_json(e.message));
      } catch (const Error& e) {
        send_json(res, e.kind() == ErrorKind::usage ? 400 : 422, error_json(e.what()));
      } catch (const std::bad_alloc&) {
        send_json(res, 503, error_json("out of memory"));
      }
    };
  }

  Work work_for(const std::string& kind, const json& body) {
    if (kind == "map") return map_work(body);
    if (kind == "place") return place_work(body, false);
    if (kind == "atlas") return place_work(body, true);
    fail(400, "\"kind\" must be \"map\", \"place\" or \"atlas\"");
  }

  void routes() {
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      res.set_header("X-Content-Type-Options", "nosniff");
      res.set_header("Cache-Control", "no-store");
      res.set_header("Referrer-Policy", "no-referrer");
      return refuse(req, res) ? httplib::Server::HandlerResponse::Handled
                              : httplib::Server::HandlerResponse::Unhandled;
    });
    http.set_error_handler([](const httplib::Request&, httplib::Response& res) {
      if (!res.body.empty()) return;
      std::string message = "HTTP " + std::to_string(res.status);
      if (res.status == 400) message = "malformed HTTP request";
      if (res.status == 405) message = "method not allowed on this route";
      if (res.status == 413) message = "the request body is larger than this server takes";
      if (res.status == 404) message = "no such route (see docs/SERVE.md)";
      send_json(res, res.status, error_json(message));
    });
    http.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
          send_json(res, 500, error_json("internal error"));
        });

    http.Get("/", guarded([this](const httplib::Request& req, httplib::Response& res) {
               json live{{"api", "/api/v1"}, {"health", health()}};
               res.set_header(
                   "Content-Security-Policy",
                   "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                   "img-src data: blob:; connect-src 'self'; font-src data:; "
                   "frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
               // The token in the address becomes a same-site cookie, so the page's own requests
               // (and EventSource, which cannot send headers) carry it without the page holding it.
               if (!options.token.empty() && req.has_param("token"))
                 res.set_header("Set-Cookie", "tokmap_token=" + options.token +
                                                  "; Path=/; HttpOnly; SameSite=Strict");
               res.set_content(report::page_html("null", live.dump(-1, ' ', false,
                                                                   json::error_handler_t::replace)),
                               "text/html; charset=utf-8");
             }));
    http.Get("/api/v1/health", guarded([this](const httplib::Request&, httplib::Response& res) {
               send_json(res, 200, health().dump());
             }));
    http.Post("/api/v1/map", guarded([this](const httplib::Request& req, httplib::Response& res) {
                const json body = parse_body(req);
                answer(submit("map", map_work(body)), res);
              }));
    http.Post("/api/v1/place", guarded([this](const httplib::Request& req, httplib::Response& res) {
                const json body = parse_body(req);
                answer(submit("place", place_work(body, false)), res);
              }));
    http.Post("/api/v1/jobs", guarded([this](const httplib::Request& req, httplib::Response& res) {
                const json body = parse_body(req);
                const std::string kind = get_string(body, "kind", "map");
                auto job = submit(kind, work_for(kind, body));
                std::lock_guard<std::mutex> lock(job->mutex);
                json state = job->state();
                state["events"] = "/api/v1/jobs/" + job->id + "/events";
                state["result"] = "/api/v1/jobs/" + job->id + "/result";
                send_json(res, 202, state.dump());
              }));
    http.Get(R"(/api/v1/jobs/([0-9a-f]+))",
             guarded([this](const httplib::Request& req, httplib::Response& res) {
               auto job = find_job(req.matches[1]);
               std::lock_guard<std::mutex> lock(job->mutex);
               send_json(res, 200, job->state().dump());
             }));
    http.Delete(R"(/api/v1/jobs/([0-9a-f]+))",
                guarded([this](const httplib::Request& req, httplib::Response& res) {
                  auto job = find_job(req.matches[1]);
                  job->cancel = true;
                  std::lock_guard<std::mutex> lock(job->mutex);
                  send_json(res, 200, job->state().dump());
                }));
    http.Get(R"(/api/v1/jobs/([0-9a-f]+)/result)",
             guarded([this](const httplib::Request& req, httplib::Response& res) {
               auto job = find_job(req.matches[1]);
               std::lock_guard<std::mutex> lock(job->mutex);
               if (!job->finished()) {
                 send_json(res, 409,
                           error_json("job " + job->id + " is " + status_name(job->status) +
                                      ", not finished"));
               } else {
                 send_outcome(*job, res);
               }
             }));
    // The static report of a finished map job as one self-contained file (the page's download).
    http.Get(R"(/api/v1/jobs/([0-9a-f]+)/report.html)",
             guarded([this](const httplib::Request& req, httplib::Response& res) {
               auto job = find_job(req.matches[1]);
               std::lock_guard<std::mutex> lock(job->mutex);
               if (job->status != Status::done || job->kind == "place")
                 fail(409, "job " + job->id + " has no report (only finished map and atlas jobs)");
               res.set_header("Content-Disposition", "attachment; filename=\"tokmap-report.html\"");
               res.set_content(report::page_html(job->result), "text/html; charset=utf-8");
             }));
    // Server-sent events: the job's state on every change, then one final event.
    http.Get(R"(/api/v1/jobs/([0-9a-f]+)/events)",
             guarded([this](const httplib::Request& req, httplib::Response& res) {
               auto job = find_job(req.matches[1]);
               auto seen = std::make_shared<int>(-1);
               res.set_chunked_content_provider(
                   "text/event-stream", [this, job, seen](std::size_t, httplib::DataSink& sink) {
                     std::unique_lock<std::mutex> lock(job->mutex);
                     job->changed.wait_for(lock, std::chrono::seconds(1),
                                           [&] { return job->version != *seen; });
                     if (job->version == *seen) {
                       lock.unlock();
                       if (server_stopping()) return false;
                       const std::string ping = ": waiting\n\n";
                       return sink.write(ping.data(), ping.size());
                     }
                     *seen = job->version;
                     const bool last = job->finished();
                     const std::string event = std::string("event: ") +
                                               (last ? status_name(job->status) : "progress") +
                                               "\ndata: " + job->state().dump() + "\n\n";
                     lock.unlock();
                     if (!sink.write(event.data(), event.size())) return false;
                     if (last) sink.done();
                     return true;
                   });
             }));
  }

  bool server_stopping() {
    std::lock_guard<std::mutex> lock(jobs_mutex);
    return stopping;
  }
};

Server::Server(ServeOptions options) : state_(std::make_unique<State>(std::move(options))) {
  auto& s = *state_;
  if (s.options.models.empty()) s.options.models.push_back("");
  for (const auto& spec : s.options.models) {
    const auto& loaded = s.engine.load(spec);
    s.models.push_back({spec, loaded.name, &loaded});
  }
  for (const auto& path : s.options.atlases) {
    State::LoadedAtlas a;
    a.name = path.stem().string();
    a.path = path;
    a.atlas = atlas::read(path);
    for (const auto& other : s.atlases)
      if (other.name == a.name)
        throw Error("two atlases are both named " + a.name + ": " + other.path.string() + " and " +
                        path.string(),
                    ErrorKind::usage);
    s.atlases.push_back(std::move(a));
  }
  if (!is_loopback(s.options.host) && s.options.token.empty()) s.options.token = make_token();
  s.http.set_payload_max_length(s.options.max_body_bytes);
  const auto timeout =
      std::chrono::milliseconds(static_cast<std::int64_t>(s.options.read_timeout_seconds * 1000.0));
  s.http.set_read_timeout(timeout);
  s.http.set_write_timeout(std::chrono::seconds(30));
  s.http.set_keep_alive_timeout(s.options.keep_alive_seconds);
  // httplib's default sets SO_REUSEPORT, which lets a second server bind the same port and
  // silently take half its connections; SO_REUSEADDR alone still allows a quick restart.
  s.http.set_socket_options([&s](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    s.listen_socket = sock;
  });
  const int http_threads = std::max(4, s.options.http_threads);
  s.http.new_task_queue = [http_threads] {
    return new httplib::ThreadPool(static_cast<std::size_t>(http_threads));
  };
  s.routes();
}

Server::~Server() {
  stop();
  std::unique_lock<std::mutex> lock(state_->run_mutex);
  state_->run_changed.wait(lock, [&] { return !state_->in_run; });
}

int Server::bind() {
  auto& s = *state_;
  if (s.options.port == 0) {
    s.port = s.http.bind_to_any_port(s.options.host);
    if (s.port < 0) throw Error("cannot listen on " + s.options.host);
  } else {
    if (!s.http.bind_to_port(s.options.host, s.options.port))
      throw Error("cannot listen on " + s.options.host + ":" + std::to_string(s.options.port) +
                  " (in use? --port 0 picks a free one)");
    s.port = s.options.port;
  }
  // httplib listens with a backlog of 5: a burst of clients beyond that (20 at once in the load
  // test) loses SYNs and waits a 1 s retransmit. Listening again only raises the backlog.
  if (s.listen_socket >= 0) ::listen(s.listen_socket, SOMAXCONN);
  return s.port;
}

void Server::run() {
  auto& s = *state_;
  {
    std::lock_guard<std::mutex> lock(s.run_mutex);
    if (s.in_run) throw Error("serve: run() is already serving", ErrorKind::usage);
    s.in_run = true;
  }
  s.worker = std::thread([&s] { s.work_loop(); });
  s.http.listen_after_bind();
  s.cancel_all();
  s.worker.join();
  std::lock_guard<std::mutex> lock(s.run_mutex);
  s.in_run = false;
  s.run_changed.notify_all();
}

void Server::stop() {
  state_->cancel_all();
  state_->http.stop();
}

std::string Server::url() const {
  const auto& s = *state_;
  std::string host = s.options.host;
  if (host == "0.0.0.0" || host == "::") host = "127.0.0.1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return "http://" + host + ":" + std::to_string(s.port) + "/" +
         (s.options.token.empty() ? "" : "?token=" + s.options.token);
}

}  // namespace tokmap::serve
