#pragma once
// Strict JSON parsing for untrusted files: one-line errors naming the file, and duplicate keys
// rejected at any depth (nlohmann/json would silently keep the last value).
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace tokmap::io {

nlohmann::json parse_json(std::string_view text, const std::string& where);

// Floats as a JSON array of numbers rounded to `digits` significant digits (not the 17 of the
// double each is widened to); NaN and Inf, which JSON cannot hold, become null.
nlohmann::json json_floats(const std::vector<float>& values, int digits);

}  // namespace tokmap::io
