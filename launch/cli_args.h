// Small command-line parsing shared by the `tessel` subcommands: positional arguments, flags
// with values, and the repeated `--set k=v [k=v ...]` overrides. Unknown flags are errors that
// list the valid ones.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace tessel {

struct ParsedArgs {
  std::vector<std::string> positional;
  std::map<std::string, std::string> flags;  // "--tokens" -> "64"; switches map to "1"
  std::vector<std::string> overrides;        // from --set

  bool has(const std::string& flag) const { return flags.count(flag) != 0; }
  std::string get(const std::string& flag, const std::string& fallback) const;
  int64_t get_int(const std::string& flag, int64_t fallback) const;
  double get_double(const std::string& flag, double fallback) const;
};

// `value_flags` take a value; `switches` do not. `command` names the subcommand in errors.
// `--set` is accepted only when `overrides` is true.
ParsedArgs parse_args(const std::vector<std::string>& args, const std::string& command,
                      const std::vector<std::string>& value_flags, const std::vector<std::string>& switches = {},
                      bool overrides = true);

}  // namespace tessel
