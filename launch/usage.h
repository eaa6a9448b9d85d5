// What `tessel --help`, `tessel help COMMAND` and `tessel COMMAND --help` print: the overview of
// every command, and each command's usage with its options. The commands' own errors quote the
// same text, so there is one place to keep it true (docs/cli.md says the same at length).
#pragma once

#include <string>

namespace tessel {

// The overview: one line per command.
const char* tessel_usage();
// COMMAND's usage and options ("train", "data", "ckpt", ...); "" for an unknown command.
std::string command_usage(const std::string& command);

}  // namespace tessel
