#include "io/json.hpp"

#include <charconv>
#include <cmath>
#include <set>
#include <vector>

#include "core/error.hpp"

namespace tokmap::io {

nlohmann::json parse_json(std::string_view text, const std::string& where) {
  using json = nlohmann::json;
  std::vector<std::set<std::string>> keys_per_object;  // one entry per open object
  std::string duplicate;
  json value;
  try {
    value = json::parse(text, [&](int, json::parse_event_t event, json& parsed) {
      switch (event) {
        case json::parse_event_t::object_start:
          keys_per_object.emplace_back();
          break;
        case json::parse_event_t::object_end:
          keys_per_object.pop_back();
          break;
        case json::parse_event_t::key:
          if (!keys_per_object.back().insert(parsed.get<std::string>()).second &&
              duplicate.empty()) {
            duplicate = parsed.get<std::string>();
          }
          break;
        default:
          break;
      }
      return true;
    });
  } catch (const json::exception& e) {
    throw Error(where + ": not valid JSON: " + e.what());
  }
  if (!duplicate.empty()) throw Error(where + ": key '" + duplicate + "' appears twice");
  return value;
}

nlohmann::json json_floats(const std::vector<float>& values, int digits) {
  nlohmann::json array = nlohmann::json::array();
  for (const float v : values) {
    if (!std::isfinite(v)) {
      array.push_back(nullptr);
      continue;
    }
    char buffer[32];
    const auto result =
        std::to_chars(buffer, buffer + sizeof buffer, v, std::chars_format::general, digits);
    double rounded = 0;
    std::from_chars(buffer, result.ptr, rounded);
    array.push_back(rounded);
  }
  return array;
}

}  // namespace tokmap::io
