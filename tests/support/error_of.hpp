#pragma once
// The message of the tokmap::Error that `fn` throws, or "(no error)".
#include <string>

#include "core/error.hpp"

namespace tokmap::test_support {

std::string error_of(auto&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace tokmap::test_support
