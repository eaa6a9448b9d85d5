#include "core/io/temp_dir.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace tessel {

TempDir::TempDir(const std::string& prefix) {
  std::string pattern = "/tmp/" + prefix + ".XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  TESSEL_CHECK(::mkdtemp(buffer.data()) != nullptr)
      << "cannot create a temporary directory " << pattern << ": " << std::strerror(errno);
  path_ = buffer.data();
}

TempDir::~TempDir() {
  // Depth-first (FTW_DEPTH) so that directories are empty when removed; FTW_PHYS so that a
  // symlink is removed, never followed out of the directory.
  ::nftw(
      path_.c_str(), [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
      FTW_DEPTH | FTW_PHYS);
}

}  // namespace tessel
