#include "core/checkpoint/directory.h"

#include <algorithm>
#include <filesystem>
#include <utility>

#include "core/checkpoint/format.h"
#include "core/error.h"
#include "core/io/file.h"

namespace tessel {
namespace fs = std::filesystem;
namespace {

// Complete checkpoints under root, oldest first by step number (names stop sorting past 10^8).
// A listing reads no names from files, so an entry that cannot be a checkpoint here (a symlink
// loop, a link leading out of root) is passed over; only `latest`, which names one, makes it an
// error (latest_checkpoint).
std::vector<fs::path> complete_steps(const fs::path& root) {
  std::vector<std::pair<int64_t, fs::path>> found;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return {};
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const std::string name = e.path().filename().string();
    const int64_t step = step_of(name);
    if (step < 0) continue;
    try {
      const std::string dir = contained_path(root.string(), name, root.string());
      if (e.is_directory(ec) && path_exists(contained_path(dir, kManifestFile, dir))) found.emplace_back(step, dir);
    } catch (const Error&) {
      // a symlink loop or a link out of root: not a checkpoint of this root
    }
  }
  std::sort(found.begin(), found.end());
  std::vector<fs::path> steps;
  for (auto& f : found) steps.push_back(std::move(f.second));
  return steps;
}

}  // namespace

std::string prepare_checkpoint_dir(const std::string& root, int64_t step) {
  const fs::path tmp_dir = fs::path(root) / (step_dir_name(step) + ".tmp");
  std::error_code ec;
  fs::create_directories(root, ec);
  TESSEL_CHECK(!ec) << "cannot create checkpoint directory '" << root << "': " << ec.message()
                    << "; hint: set checkpoint.dir to a writable path";
  fs::remove_all(tmp_dir, ec);
  fs::create_directories(tmp_dir, ec);
  TESSEL_CHECK(!ec) << "cannot create '" << tmp_dir.string() << "': " << ec.message();
  return tmp_dir.string();
}

std::string publish_step_dir(const std::string& root, const std::string& tmp_dir, int64_t step) {
  const fs::path final_dir = fs::path(root) / step_dir_name(step);
  std::error_code ec;
  fs::remove_all(final_dir, ec);
  fs::rename(tmp_dir, final_dir, ec);
  TESSEL_CHECK(!ec) << "cannot rename '" << tmp_dir << "' to '" << final_dir.string() << "': " << ec.message();
  fsync_directory(root);
  write_file_atomic((fs::path(root) / "latest").string(), final_dir.filename().string() + "\n");
  return final_dir.string();
}

void prune_checkpoints(const std::string& root, const std::string& step_dir, int64_t keep) {
  if (keep <= 0) return;
  const fs::path final_dir(step_dir);
  std::error_code ec;
  // Keep the step just written (which `latest` names) and the newest keep − 1 others. Steps
  // newer than this one can only come from another run in the same directory; they count as
  // "others" and are never preferred over the checkpoint this run just wrote.
  std::vector<fs::path> others;
  for (const fs::path& p : complete_steps(root)) {
    if (p.filename() != final_dir.filename()) others.push_back(p);
  }
  const size_t keep_others = static_cast<size_t>(keep - 1);
  for (size_t i = 0; i + keep_others < others.size(); ++i) fs::remove_all(others[i], ec);
}

std::vector<std::string> complete_checkpoints(const std::string& root) {
  std::vector<std::string> out;
  for (const fs::path& p : complete_steps(root)) out.push_back(p.string());
  return out;
}

std::string latest_named(const std::string& root) {
  const std::string latest = contained_path(root, "latest", root);
  if (!path_exists(latest)) return "";
  std::string name = read_file(latest, 4096);  // one step directory's name
  while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
  return name;
}

std::string latest_checkpoint(const std::string& root) {
  const std::string name = latest_named(root);
  if (!name.empty()) {
    // `latest` is a file anyone may have edited: what it names must be a step directory of root.
    const std::string step_dir = contained_path(root, name, (fs::path(root) / "latest").string());
    if (step_of(name) >= 0 && path_exists(contained_path(step_dir, kManifestFile, step_dir))) return step_dir;
  }
  std::vector<fs::path> steps = complete_steps(root);
  return steps.empty() ? std::string() : steps.back().string();
}

std::string resolve_checkpoint(const std::string& path) {
  resolved_path(path, "checkpoint");  // a symlink loop is named as one, not taken for a missing checkpoint
  if (path_exists(contained_path(path, kManifestFile, path))) return path;
  TESSEL_CHECK(!path_exists((fs::path(path) / "state.safetensors").string()))
      << "checkpoint " << path << " is in format 2 (one state.safetensors, written by an earlier Tessel); this "
      << "Tessel reads format " << kCheckpointFormatVersion << " (manifest.pb and per-rank files); hint: retrain, "
      << "or load it with the Tessel that wrote it";
  std::string latest = latest_checkpoint(path);
  // A run's out_dir: its checkpoints are in <out_dir>/checkpoints unless checkpoint.dir moved them.
  std::error_code ec;
  if (latest.empty() && fs::is_directory(fs::path(path) / "checkpoints", ec)) {
    latest = latest_checkpoint(contained_path(path, "checkpoints", path));
  }
  TESSEL_CHECK(!latest.empty()) << "no checkpoint at '" << path << "': expected a step_NNNNNNNN directory holding "
                                << kManifestFile
                                << ", or a checkpoint root with one; hint: train with checkpoint.every or point at "
                                << "<run.out_dir>/checkpoints";
  return latest;
}

}  // namespace tessel
