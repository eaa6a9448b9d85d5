// A checkpoint root's step directories (core/checkpoint/format.h): preparing the one being
// written, publishing it, finding the complete ones, and keeping the newest few.
//
// Saving is atomic: ranks write into step_N.tmp/ (prepare_checkpoint_dir), the manifest goes in
// last (core/checkpoint/manifest.h), then publish_step_dir renames it to step_N/ and replaces
// `latest` by write-and-rename, fsyncing each level, so a crash at any moment leaves the
// previous checkpoints as they were. Functions of the file system only; no communication.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tessel {

// A fresh, empty <root>/step_N.tmp/ (a stale one from an interrupted save is removed).
std::string prepare_checkpoint_dir(const std::string& root, int64_t step);

// Renames the complete `tmp_dir` (manifest written) to <root>/step_<step>, fsyncs the root and
// points `latest` at it. Returns the step directory.
std::string publish_step_dir(const std::string& root, const std::string& tmp_dir, int64_t step);

// Keeps `step_dir` (the one just published) and the newest keep − 1 other complete checkpoints
// under root; keep 0 keeps all. Steps newer than step_dir can only come from another run in the
// same directory: they count as "others" and are never preferred over it.
void prune_checkpoints(const std::string& root, const std::string& step_dir, int64_t keep);

// A step directory, a root whose `latest` (or newest step_*) is taken, or a run's out_dir (its
// checkpoints/ root). Throws when there is none, naming what was looked for.
std::string resolve_checkpoint(const std::string& path);
// The newest complete checkpoint under root, or "" when there is none.
std::string latest_checkpoint(const std::string& root);
// The step directory name <root>/latest holds, whether or not it is complete; "" without one.
std::string latest_named(const std::string& root);
// Every complete checkpoint under root (a step_N directory with a manifest), oldest first.
std::vector<std::string> complete_checkpoints(const std::string& root);

}  // namespace tessel
