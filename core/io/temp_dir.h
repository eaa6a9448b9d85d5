// A fresh, private directory under /tmp (mkdtemp) that is removed with its contents when the
// TempDir goes away: scratch space for tests and tools that write files.
//
// Owns the directory; not copyable. Removal is best-effort (a destructor must not throw).
#pragma once

#include <string>

namespace tessel {

class TempDir {
 public:
  // Creates /tmp/<prefix>.XXXXXX; throws tessel::Error if it cannot.
  explicit TempDir(const std::string& prefix = "tessel");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace tessel
