#include "parallel/planner/profile_file.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "core/error.h"

namespace tessel {
namespace fs = std::filesystem;

std::string profile_dir(const char* env, const std::string& built_in) {
  const char* value = std::getenv(env);
  return value != nullptr && *value != '\0' ? std::string(value) : built_in;
}

std::vector<std::string> profile_names(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().extension() == ".yaml") names.push_back(e.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

ProfileFile load_profile_file(const std::string& dir, const std::string& name_or_path, const std::string& kind) {
  const bool is_path = name_or_path.find('/') != std::string::npos || fs::path(name_or_path).extension() == ".yaml";
  ProfileFile file;
  file.path = is_path ? name_or_path : (fs::path(dir) / (name_or_path + ".yaml")).string();
  if (!fs::exists(file.path)) {
    std::string known;
    for (const std::string& n : profile_names(dir)) known += (known.empty() ? "" : ", ") + n;
    TESSEL_FAIL() << "unknown " << kind << " '" << name_or_path
                  << "'; known: " << (known.empty() ? "(none found)" : known) << " (profiles in " << dir
                  << "), or give a path to a profile .yaml";
  }
  try {
    file.yaml = YAML::LoadFile(file.path);
  } catch (const YAML::Exception& e) {
    TESSEL_FAIL() << file.path << ":" << e.mark.line + 1 << ": " << e.msg;
  }
  TESSEL_CHECK(file.yaml.IsMap()) << file.path << ": a " << kind << " profile is a map of keys, found something else";
  return file;
}

void only_known_keys(const std::string& path, const YAML::Node& map, const std::vector<std::string>& keys,
                     const std::string& what) {
  for (const auto& kv : map) {
    const std::string key = kv.first.Scalar();
    if (std::find(keys.begin(), keys.end(), key) != keys.end()) continue;
    std::string known;
    for (const std::string& k : keys) known += (known.empty() ? "" : ", ") + k;
    TESSEL_FAIL() << path << ":" << kv.first.Mark().line + 1 << ": unknown key '" << key << "' in " << what
                  << "; expected " << known;
  }
}

double profile_number(const YAML::Node& node, const std::string& key, const std::string& path) {
  TESSEL_CHECK(node && node.IsScalar()) << path << ": missing '" << key << "' (a number)";
  try {
    const double v = node.as<double>();
    TESSEL_CHECK(v > 0) << path << ": '" << key << "' must be positive, found " << v;
    return v;
  } catch (const YAML::Exception&) {
    TESSEL_FAIL() << path << ": '" << key << "' must be a number, found '" << node.Scalar() << "'";
  }
}

}  // namespace tessel
