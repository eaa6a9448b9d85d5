// The manifest of a step directory (manifest.pb, core/checkpoint/manifest.proto), internal to
// core/checkpoint: built from the rank files when a save is published, read and verified when a
// checkpoint is opened (core/checkpoint/reader.h).
//
// On disk it is a ManifestFile: the format version and the serialized Manifest with its crc32c,
// so a damaged or edited manifest is recognized as such. The pieces' descriptions travel from
// the rank files' metadata ("piece.<key>": tensor|shape|box start|box end|flat begin|flat end,
// "crc32c.<key>": the piece's checksum). Pure functions over the files they name.
#pragma once

#include <string>

#include "core/checkpoint/format.h"
#include "core/checkpoint/region.h"
#include "manifest.pb.h"

namespace tessel {

// The end of the messages about a damaged checkpoint.
inline constexpr const char* kCheckpointFallbackHint =
    "; hint: with checkpoint.resume: auto the previous checkpoint is used instead, or resume from an earlier "
    "step_* directory";

// A piece's description in its rank file's metadata.
std::string piece_description(const std::string& tensor, const Shape& shape, const Region& r);

// Writes <tmp_dir>/manifest.pb for `meta` and every piece of the rank files in tmp_dir, checking
// that the pieces cover each tensor exactly, and fsyncs the directory.
void write_manifest(const std::string& tmp_dir, const CheckpointMeta& meta);

// The manifest of `step_dir`, checked for its version and checksum; throws naming what is wrong.
checkpoint::Manifest read_manifest(const std::string& step_dir);

// The meta a manifest records (path left empty).
CheckpointMeta manifest_meta(const checkpoint::Manifest& m);

// A piece's region of its tensor.
Region piece_region(const checkpoint::Piece& p);

}  // namespace tessel
