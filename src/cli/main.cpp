#include "cli/cli.hpp"

int main(int argc, char** argv) { return tokmap::cli::run(argc, argv); }
