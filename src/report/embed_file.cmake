# Writes OUTPUT, a C++ file defining tokmap::report::page_template() as the contents of INPUT.
file(READ "${INPUT}" content)
set(delimiter "tokmap_page")
string(FIND "${content}" ")${delimiter}\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains the raw-string delimiter")
endif()
file(WRITE "${OUTPUT}.tmp"
  "// Generated from web/ by src/report/embed_file.cmake; do not edit.\n"
  "#include \"report/report.hpp\"\n"
  "namespace tokmap::report {\n"
  "std::string_view page_template() {\n"
  "  static constexpr char page[] = R\"${delimiter}(")
file(APPEND "${OUTPUT}.tmp" "${content}")
file(APPEND "${OUTPUT}.tmp" ")${delimiter}\";\n  return {page, sizeof(page) - 1};\n}\n}  // namespace tokmap::report\n")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
