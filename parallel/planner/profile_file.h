// Profiles the planner reads from YAML files in a directory (configs/hardware,
// configs/frameworks): one looked up by name or given by path, and the names a directory holds.
#pragma once

#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace tessel {

// `env` (when set and not empty), else `built_in`: the directory the build knows.
std::string profile_dir(const char* env, const std::string& built_in);
// Names of the .yaml files in `dir`, sorted.
std::vector<std::string> profile_names(const std::string& dir);

struct ProfileFile {
  std::string path;
  YAML::Node yaml;
};
// `name_or_path`: a name looked up as <dir>/<name>.yaml, or a path (it has a '/' or ends in
// .yaml). An unknown name is an error listing the known ones ("unknown <kind> 'x'; known: ...");
// a file that is not YAML, one naming the file and line.
ProfileFile load_profile_file(const std::string& dir, const std::string& name_or_path, const std::string& kind);

// An error naming the file and line of the first key of `map` not in `keys` ("unknown key 'x'
// in <what>; expected a, b, c"): a misspelt key is never silently ignored.
void only_known_keys(const std::string& path, const YAML::Node& map, const std::vector<std::string>& keys,
                     const std::string& what);

// A positive number under `key` of `node` (a profile's field), or an error naming the file.
double profile_number(const YAML::Node& node, const std::string& key, const std::string& path);

}  // namespace tessel
