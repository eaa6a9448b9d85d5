#include "parallel/planner/framework.h"

#include <filesystem>

#include "core/error.h"
#include "parallel/planner/profile_file.h"

namespace tessel {

std::string framework_dir() {
  return profile_dir("TESSEL_FRAMEWORK_DIR", TESSEL_FRAMEWORK_DIR);  // configs/frameworks of the source tree
}

std::vector<std::string> known_frameworks() { return profile_names(framework_dir()); }

Framework load_framework(const std::string& name_or_path) {
  const ProfileFile file = load_profile_file(framework_dir(), name_or_path, "framework");
  only_known_keys(file.path, file.yaml,
                  {"name", "attention", "pp_scatter_gather", "hidden_dropout", "optimizer_bytes_per_param"},
                  "a framework profile");
  Framework f;
  f.path = file.path;
  f.name = std::filesystem::path(file.path).stem().string();
  auto flag = [&](const char* key) {
    const YAML::Node n = file.yaml[key];
    if (!n) return false;
    const std::string v = n.Scalar();
    TESSEL_CHECK(v == "true" || v == "false")
        << file.path << ":" << n.Mark().line + 1 << ": '" << key << "' must be true or false, found '" << v << "'";
    return v == "true";
  };
  if (file.yaml["name"]) f.name = file.yaml["name"].Scalar();
  if (const YAML::Node a = file.yaml["attention"]) {
    TESSEL_CHECK(a.Scalar() == "fused" || a.Scalar() == "unfused")
        << file.path << ":" << a.Mark().line + 1 << ": 'attention' must be fused or unfused, found '" << a.Scalar()
        << "'";
    f.attention = a.Scalar() == "fused" ? AttentionImpl::kFused : AttentionImpl::kUnfused;
  }
  f.pp_scatter_gather = flag("pp_scatter_gather");
  f.hidden_dropout = flag("hidden_dropout");
  if (file.yaml["optimizer_bytes_per_param"])
    f.optimizer_bytes_per_param =
        profile_number(file.yaml["optimizer_bytes_per_param"], "optimizer_bytes_per_param", file.path);
  return f;
}

}  // namespace tessel
