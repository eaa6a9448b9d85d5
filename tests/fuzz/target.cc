#include "tests/fuzz/target.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <memory>

#include "core/io/temp_dir.h"

namespace tessel::fuzz {

const std::vector<Target>& all_targets() {
  static const std::vector<Target> targets = {
      {"config", fuzz_config},     {"safetensors", fuzz_safetensors},
      {"manifest", fuzz_manifest}, {"megatron", fuzz_megatron},
      {"llmc", fuzz_llmc},         {"json", fuzz_json},
      {"gpt2", fuzz_gpt2},         {"hf_config", fuzz_hf_config},
      {"cli", fuzz_cli},
  };
  return targets;
}

namespace {

// A directory in memory (/dev/shm) when there is one: a target writes its input there on every
// execution, which on a disk costs more than the parsing.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = "/dev/shm/tessel_fuzz.XXXXXX";
    if (std::filesystem::is_directory("/dev/shm") && mkdtemp(pattern.data()) != nullptr) {
      path_ = pattern;
    } else {
      fallback_ = std::make_unique<TempDir>("tessel_fuzz");
      path_ = fallback_->path();
    }
  }
  ~ScratchDir() {
    std::error_code ignored;
    if (!fallback_) std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::unique_ptr<TempDir> fallback_;
};

}  // namespace

const std::string& scratch_dir() {
  // One per process, made on first use and removed when the process exits normally.
  static const ScratchDir dir;
  return dir.path();
}

std::string scratch_file(const std::string& name, std::string_view bytes) {
  const std::string path = scratch_dir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) throw FuzzPropertyFailed("cannot write the scratch file " + path);
  return path;
}

}  // namespace tessel::fuzz
