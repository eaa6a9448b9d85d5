// Every committed fuzz seed (tests/fuzz/corpus/<target>/) and every input that once made a
// target crash (tests/fuzz/regressions/<target>/, one file per finding) goes through its target
// again in the normal build: a parser that regresses throws something other than tessel::Error,
// or breaks a target's property, and the case names the file.
#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "core/io/file.h"
#include "tests/fuzz/target.h"

using namespace tessel;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> files_under(const fs::path& dir) {
  std::vector<std::string> files;
  if (!fs::is_directory(dir)) return files;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file()) files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

void replay(const fuzz::Target& target, const std::string& file) {
  const std::string bytes = read_file(file);
  try {
    target.run(bytes);
  } catch (const std::exception& e) {
    FAIL("fuzz_" << target.name << " on " << file << ": " << e.what());
  }
}

}  // namespace

TEST_CASE("fuzz seeds go through every target without a crash", "[cpu][fuzz]") {
  const fs::path root = fs::path(TESSEL_SOURCE_DIR) / "tests/fuzz/corpus";
  for (const fuzz::Target& target : fuzz::all_targets()) {
    const std::vector<std::string> seeds = files_under(root / target.name);
    INFO("target " << target.name);
    CHECK(seeds.size() >= 2);  // every target starts from real inputs of its format
    for (const std::string& file : seeds) replay(target, file);
  }
}

TEST_CASE("inputs that once crashed a fuzz target are handled", "[cpu][fuzz]") {
  const fs::path root = fs::path(TESSEL_SOURCE_DIR) / "tests/fuzz/regressions";
  int replayed = 0;
  for (const fuzz::Target& target : fuzz::all_targets()) {
    for (const std::string& file : files_under(root / target.name)) {
      replay(target, file);
      ++replayed;
    }
  }
  // Each folder of regressions names a target; a misspelt folder would go unreplayed.
  for (const auto& e : fs::directory_iterator(root)) {
    bool known = false;
    for (const fuzz::Target& target : fuzz::all_targets()) known |= e.path().filename() == target.name;
    INFO(e.path().string() << " is not named after a fuzz target");
    CHECK(known);
  }
  CHECK(replayed > 0);
}
