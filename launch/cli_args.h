// Small command-line parsing shared by the `tessel` subcommands: positional arguments, flags
// with values, and the repeated `--set k=v [k=v ...]` overrides. Unknown flags are errors that
// list the valid ones.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace tessel {

// Bounds of the counts the commands take (threads, GPUs, ranks per node, restarts).
constexpr int64_t kMaxThreads = 4096;
constexpr int64_t kMaxGpus = int64_t{1} << 20;
constexpr int64_t kMaxRanksPerNode = 4096;
constexpr int64_t kMaxRestarts = 1000;

struct ParsedArgs {
  std::vector<std::string> positional;
  std::map<std::string, std::string> flags;  // "--tokens" -> "64"; switches map to "1"
  std::vector<std::string> overrides;        // from --set

  bool has(const std::string& flag) const { return flags.count(flag) != 0; }
  std::string get(const std::string& flag, const std::string& fallback) const;
  int64_t get_int(const std::string& flag, int64_t fallback) const;
  // The same, refused outside [min, max] (so a value narrowed to int afterwards stays itself).
  int64_t get_int(const std::string& flag, int64_t fallback, int64_t min, int64_t max) const;
  double get_double(const std::string& flag, double fallback) const;
};

// `value_flags` take a value; `switches` do not. `command` names the subcommand in errors.
// `--set` is accepted only when `overrides` is true.
ParsedArgs parse_args(const std::vector<std::string>& args, const std::string& command,
                      const std::vector<std::string>& value_flags, const std::vector<std::string>& switches = {},
                      bool overrides = true);

}  // namespace tessel
