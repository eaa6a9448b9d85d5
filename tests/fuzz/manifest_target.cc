// A checkpoint's manifest.pb, opened by the reader as `tessel eval` or a resume would: the
// manifest's checksum, format version, the pieces' coverage of every tensor and the files they
// name are checked; then the stored config is parsed.
#include <filesystem>

#include "core/checkpoint/format.h"
#include "core/checkpoint/reader.h"
#include "core/config/config.h"
#include "core/error.h"
#include "tests/fuzz/target.h"

namespace tessel::fuzz {

void fuzz_manifest(std::string_view data) {
  const std::string step_dir = scratch_dir() + "/step_00000001";
  std::filesystem::create_directories(step_dir);
  scratch_file(std::string("step_00000001/") + kManifestFile, data);
  try {
    CheckpointReader reader(step_dir);
    reader.tensors();
    reader.files();
    parse_config(reader.meta().config_yaml, "manifest config");
  } catch (const Error&) {
  }
}

}  // namespace tessel::fuzz
