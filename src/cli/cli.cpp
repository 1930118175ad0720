#include "cli/cli.hpp"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <iostream>

#include "core/error.hpp"
#include "io/io.hpp"

namespace tokmap::cli {

void warn(const CommonOptions& common, std::string_view message) {
  if (!common.quiet) std::cerr << "tokmap: warning: " << message << '\n';
}

void info(const CommonOptions& common, std::string_view message) {
  if (!common.quiet) std::cerr << "tokmap: " << message << '\n';
}

Progress::Progress(const CommonOptions& common, std::string label, std::size_t total)
    : label_(std::move(label)),
      total_(total),
      enabled_(!common.quiet && isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() { finish(); }

void Progress::update(std::size_t done) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - start_ < std::chrono::seconds(1)) return;
  if (drawn_ && now - last_draw_ < std::chrono::milliseconds(100) && done < total_) return;
  last_draw_ = now;
  drawn_ = true;
  const double fraction = total_ == 0 ? 1.0 : static_cast<double>(done) / total_;
  const int width = 30;
  const int filled = static_cast<int>(fraction * width);
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  std::fprintf(stderr, "\r%s [%.*s%*s] %3d%% %zu/%zu %.1fs", label_.c_str(), filled,
               "##############################", width - filled, "",
               static_cast<int>(fraction * 100), done, total_, elapsed);
  std::fflush(stderr);
}

void Progress::finish() {
  if (drawn_) {
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
    drawn_ = false;
  }
  enabled_ = false;
}

void add_common_flags(CLI::App& command, CommonOptions& common) {
  command.add_flag("-q,--quiet", common.quiet, "No progress bar, warnings or summaries on stderr");
}

CLI::Validator whole_number(long long minimum, unsigned long long maximum) {
  return CLI::Validator(
      [minimum, maximum](std::string& text) -> std::string {
        const char* begin = text.data();
        const char* end = begin + text.size();
        const bool negative = !text.empty() && text.front() == '-';
        long long value = 0;
        unsigned long long unsigned_value = 0;
        const auto parsed = negative ? std::from_chars(begin, end, value)
                                     : std::from_chars(begin, end, unsigned_value);
        if (text.empty() || parsed.ptr != end ||
            (parsed.ec != std::errc() && parsed.ec != std::errc::result_out_of_range)) {
          return "'" + text + "' is not a whole number";
        }
        const bool too_small =
            negative ? (parsed.ec != std::errc() || value < minimum)
                     : (minimum > 0 && unsigned_value < static_cast<unsigned long long>(minimum));
        if (too_small) return "must be at least " + std::to_string(minimum) + ", got " + text;
        if (!negative && (parsed.ec != std::errc() || unsigned_value > maximum)) {
          return "must be at most " + std::to_string(maximum) + ", got " + text;
        }
        return {};
      },
      std::string());
}

std::string nearest(std::string_view word, const std::vector<std::string>& candidates) {
  auto distance = [](std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
      std::size_t diagonal = row[0];
      row[0] = i;
      for (std::size_t j = 1; j <= b.size(); ++j) {
        const std::size_t up = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
        diagonal = up;
      }
    }
    return row[b.size()];
  };
  std::string best;
  std::size_t best_distance = 3;
  for (const auto& candidate : candidates) {
    std::size_t d = distance(word, candidate);
    if (word.size() >= 3 && candidate.starts_with(word)) d = std::min<std::size_t>(d, 1);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best;
}

std::string shell_quote(std::string_view word) {
  const bool plain = !word.empty() && word.find_first_not_of(
                                          "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                          "0123456789-_./,:=@+%") == std::string_view::npos;
  if (plain) return std::string(word);
  std::string quoted = "'";
  for (const char c : word) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

std::vector<std::string> shell_split(std::string_view line) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else if (c == '\'') {
      const std::size_t close = line.find('\'', i + 1);
      if (close == std::string_view::npos) throw Error("unterminated ' quote in the command");
      word.append(line.substr(i + 1, close - i - 1));
      i = close;
      in_word = true;
    } else if (c == '"') {
      for (++i; i < line.size() && line[i] != '"'; ++i) {
        if (line[i] == '\\' && i + 1 < line.size() &&
            std::string_view("\"\\$`").find(line[i + 1]) != std::string_view::npos) {
          ++i;
        }
        word += line[i];
      }
      if (i >= line.size()) throw Error("unterminated \" quote in the command");
      in_word = true;
    } else if (c == '\\' && i + 1 < line.size()) {
      word += line[++i];
      in_word = true;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

namespace {

void on_signal(int signal) {
  io::remove_pending_temp_files();
  std::signal(signal, SIG_DFL);
  std::raise(signal);
}

std::vector<std::string> command_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const auto* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    names.push_back(sub->get_name());
  }
  return names;
}

std::string one_line(std::string text) {
  for (auto& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

// "The following argument was not expected: --sed" -> the same, with the nearest flag.
std::string explain_extras(const std::string& message, const CLI::App* command) {
  if (command == nullptr) return message;
  std::vector<std::string> flags;
  for (const auto* option : command->get_options()) {
    for (const auto& name : option->get_lnames()) flags.push_back("--" + name);
  }
  const auto colon = message.find(": ");
  if (colon == std::string::npos) return message;
  std::string_view rest = std::string_view(message).substr(colon + 2);
  while (!rest.empty()) {
    const std::string word(rest.substr(0, rest.find(' ')));
    rest.remove_prefix(std::min(rest.size(), word.size() + 1));
    if (!word.starts_with("-")) continue;
    const std::string flag = word.substr(0, word.find('='));
    if (const auto guess = nearest(flag, flags); !guess.empty())
      return message + "; did you mean " + guess + "?";
  }
  return message;
}

}  // namespace

int run(int argc, char** argv) {
  return run(std::vector<std::string>(argv + std::min(argc, 1), argv + argc));
}

int run(const std::vector<std::string>& args) {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  CLI::App app{
      "tokmap: how a language model sees text. Tokenize with GPT-2's BPE, capture every\n"
      "layer's token embeddings, and map them with t-SNE."};
  app.name("tokmap");
  app.set_version_flag("--version", "tokmap 0.1.0");
  app.require_subcommand(0, 1);
  add_tokenize_command(app);
  add_embed_command(app);
  add_tsne_command(app);
  add_viz_command(app);
  add_atlas_command(app);
  add_serve_command(app);
  app.footer(
      "Examples:\n"
      "  tokmap viz --file samples/sentences.txt --highlight bank --out report\n"
      "  tokmap tokenize --text \"The bank of the river.\"\n"
      "  tokmap help viz\n"
      "Run 'tokmap help COMMAND' or 'tokmap COMMAND --help' for a command's flags.");
  std::string help_topic;
  auto* help = app.add_subcommand("help", "Show help for tokmap or one command (tokmap help viz)");
  help->add_option("command", help_topic, "The command to explain");
  help->footer("Example:\n  tokmap help viz");

  const auto usage_error = [](const std::string& message) {
    std::cerr << "tokmap: error: " << one_line(message) << '\n';
    return 2;
  };
  const std::vector<std::string> commands = command_names(app);
  if (args.empty()) {
    std::cout << app.help();
    return usage_error("give a command (tokenize, embed, tsne, viz, atlas, serve); the help is above");
  }
  // A mistyped command: say so, with the nearest one (CLI11 would only list "extra" arguments).
  if (!args[0].starts_with("-") &&
      std::find(commands.begin(), commands.end(), args[0]) == commands.end()) {
    const std::string guess = nearest(args[0], commands);
    return usage_error("unknown command '" + args[0] + "'" +
                       (guess.empty() ? "" : "; did you mean '" + guess + "'?") +
                       " (commands: tokenize, embed, tsne, viz, atlas, help)");
  }

  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 parses from the back
  try {
    app.parse(reversed);
    if (app.got_subcommand(help)) {
      if (help_topic.empty()) {
        app.clear();  // App::help() shows the selected subcommand's help, here help's own
        std::cout << app.help();
      } else if (std::find(commands.begin(), commands.end(), help_topic) != commands.end()) {
        std::cout << app.get_subcommand(help_topic)->help("tokmap");
      } else {
        const std::string guess = nearest(help_topic, commands);
        return usage_error("help: unknown command '" + help_topic + "'" +
                           (guess.empty() ? "" : "; did you mean '" + guess + "'?"));
      }
    } else if (app.get_subcommands().empty()) {
      std::cout << app.help();
      return usage_error("give a command (tokenize, embed, tsne, viz, atlas, serve); the help is above");
    }
  } catch (const CLI::CallForHelp&) {
    const auto selected = app.get_subcommands();
    std::cout << (selected.empty() ? app.help() : selected.back()->help("tokmap"));
    return 0;
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --version
    const auto selected = app.get_subcommands();
    const CLI::App* command = selected.empty() ? nullptr : selected.back();
    std::string message = e.what();
    if (message.find("not expected") != std::string::npos)
      message = explain_extras(message, command);
    const std::string see = command != nullptr ? "tokmap " + command->get_name() + " --help"
                                               : std::string("tokmap --help");
    return usage_error(message + " (see '" + see + "')");
  } catch (const Error& e) {
    std::cerr << "tokmap: error: " << one_line(e.what()) << '\n';
    return e.kind() == ErrorKind::usage ? 2 : 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "tokmap: error: out of memory\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "tokmap: error: " << one_line(e.what()) << '\n';
    return 1;
  }
  return 0;
}

}  // namespace tokmap::cli
