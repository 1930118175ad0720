#pragma once
// Strict JSON parsing for untrusted files: one-line errors naming the file, and duplicate keys
// rejected at any depth (nlohmann/json would silently keep the last value).
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace tokmap::io {

nlohmann::json parse_json(std::string_view text, const std::string& where);

}  // namespace tokmap::io
