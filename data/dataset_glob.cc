#include "data/dataset_glob.h"

#include <glob.h>

#include <algorithm>

#include "core/error.h"
#include "core/io/file.h"
#include "core/strings.h"

namespace tessel {
bool is_dataset_glob(const std::string& path) { return path.find_first_of("*?[") != std::string::npos; }

std::vector<std::string> expand_dataset_glob(const std::string& path) {
  if (!is_dataset_glob(path)) return {path};
  // A pattern of prefixes ("data/web_*") matches their .idx and .bin files.
  std::vector<std::string> patterns = {path};
  if (!ends_with(path, ".bin") && !ends_with(path, ".idx")) {
    patterns.push_back(path + ".idx");
    patterns.push_back(path + ".bin");
  }
  std::vector<std::string> files;
  for (const std::string& pattern : patterns) {
    glob_t found{};
    const int status = glob(pattern.c_str(), 0, nullptr, &found);
    if (status == 0) files.insert(files.end(), found.gl_pathv, found.gl_pathv + found.gl_pathc);
    globfree(&found);
    TESSEL_CHECK(status == 0 || status == GLOB_NOMATCH)
        << "data: cannot read the directories of '" << pattern << "' (glob error " << status << ")";
  }
  std::vector<std::string> datasets;
  for (const std::string& file : files) {
    std::string dataset;
    if (ends_with(file, ".idx")) {
      dataset = file.substr(0, file.size() - 4);
    } else if (ends_with(file, ".bin")) {
      const std::string prefix = file.substr(0, file.size() - 4);
      dataset = path_exists(prefix + ".idx") ? prefix : file;
    } else {
      continue;
    }
    if (std::find(datasets.begin(), datasets.end(), dataset) == datasets.end()) datasets.push_back(dataset);
  }
  std::sort(datasets.begin(), datasets.end());
  TESSEL_CHECK(!datasets.empty()) << "data: '" << path << "' matches no dataset (" << files.size()
                                  << " file(s) matched, none a .idx/.bin); hint: check the pattern, e.g. "
                                  << "'data/web_*' for data/web_000.idx + .bin, or 'shards/*.bin' for llm.c shards";
  return datasets;
}

}  // namespace tessel
