#include "core/io/file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include "core/error.h"
#include "core/text_escape.h"

namespace tessel {
namespace fs = std::filesystem;
namespace {

std::string errno_text() { return std::strerror(errno); }

// Whether resolved path `p` lies strictly inside resolved directory `dir`, component by component
// (a string prefix would take /a/bc for inside /a/b).
bool strictly_inside(const fs::path& p, const fs::path& dir) {
  const auto [in_dir, in_p] = std::mismatch(dir.begin(), dir.end(), p.begin(), p.end());
  return in_dir == dir.end() && in_p != p.end();
}

bool has_dot_dot(const std::string& name) {
  return name == ".." || name.rfind("../", 0) == 0 || name.find("/../") != std::string::npos ||
         (name.size() >= 3 && name.compare(name.size() - 3, 3, "/..") == 0);
}

// Closes a descriptor on scope exit, so early throws do not leak it.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

int open_or_throw(const std::string& path, int flags, const char* what) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
  TESSEL_CHECK(fd >= 0) << "cannot open " << path << " for " << what << ": " << errno_text()
                        << " (hint: check that the path exists and is accessible)";
  return fd;
}

}  // namespace

std::string read_file(const std::string& path, uint64_t max_bytes) {
  FileDescriptor fd(open_or_throw(path, O_RDONLY, "reading"));
  auto too_large = [&](const std::string& size) {
    TESSEL_FAIL() << path << " is " << size << " bytes; expected at most " << max_bytes
                  << " for this file; hint: the file is damaged or was crafted";
  };
  struct stat st;
  if (::fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) > max_bytes) {
    too_large(std::to_string(st.st_size));
  }
  std::string out;
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    TESSEL_CHECK(n >= 0) << "error reading " << path << ": " << errno_text();
    if (n == 0) break;
    out.append(buffer, static_cast<size_t>(n));
    if (out.size() > max_bytes) too_large("more than " + std::to_string(max_bytes));  // grew while read
  }
  return out;
}

bool path_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string parent_directory(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string resolved_path(const std::string& path, const std::string& what) {
  std::error_code ec;
  const fs::path resolved = fs::weakly_canonical(path, ec);
  TESSEL_CHECK(ec != std::errc::too_many_symbolic_link_levels)
      << what << " " << path << " is a symlink loop: following its links never reaches a file or directory ("
      << ec.message() << "); hint: replace the link with the file or directory it should name";
  TESSEL_CHECK(!ec) << "cannot resolve " << what << " " << path << ": " << ec.message()
                    << "; hint: check that the path is accessible";
  return resolved.string();
}

bool path_is_inside(const std::string& path, const std::string& dir) {
  return strictly_inside(resolved_path(path, "path"), resolved_path(dir, "directory"));
}

std::string contained_path(const std::string& dir, const std::string& name, const std::string& where) {
  const std::string crafted =
      "; hint: the name was edited or crafted: load only checkpoints and models that Tessel wrote or that come from a "
      "source you trust";
  auto refuse = [&](const std::string& problem, const std::string& hint) {
    TESSEL_FAIL() << where << ": " << quote_escaped(name) << " " << problem
                  << "; expected the plain name of a file or directory inside " << dir << hint;
  };
  if (name.empty()) refuse("is empty", crafted);
  if (name.find('\0') != std::string::npos) refuse("holds a NUL byte", crafted);
  if (name[0] == '/') refuse("is an absolute path", crafted);
  if (has_dot_dot(name)) refuse("has a '..' component, which leads out of its directory", crafted);
  if (name.find('/') != std::string::npos) refuse("holds a path separator where a plain file name belongs", crafted);
  if (name == ".") refuse("is the directory itself", crafted);
  const std::string base = resolved_path(dir, "directory");  // a loop in dir itself is named as such
  const std::string path = (fs::path(dir) / name).string();
  std::error_code ec;
  const fs::path resolved = fs::weakly_canonical(path, ec);
  if (ec == std::errc::too_many_symbolic_link_levels) {
    refuse("is a symlink loop: following its links never reaches a file (" + ec.message() + ")",
           "; hint: replace the link with the file it should name");
  }
  TESSEL_CHECK(!ec) << where << ": cannot resolve " << path << ": " << ec.message()
                    << "; hint: check that the path is accessible";
  if (!strictly_inside(resolved, base)) {
    refuse("is a symlink that leads to " + resolved.string() + ", not inside " + base, crafted);
  }
  const fs::file_status st = fs::status(resolved, ec);
  if (fs::exists(st) && !fs::is_regular_file(st) && !fs::is_directory(st)) {
    refuse("is a FIFO, socket or device, which a reader could block on or read without end", crafted);
  }
  return path;
}

void fsync_directory(const std::string& path) {
  FileDescriptor fd(open_or_throw(path, O_RDONLY | O_DIRECTORY, "syncing"));
  TESSEL_CHECK(::fsync(fd.get()) == 0) << "fsync of directory " << path << " failed: " << errno_text();
}

AtomicFileWriter::AtomicFileWriter(const std::string& path) : path_(path), tmp_path_(path + ".tmp") {
  fd_ = open_or_throw(tmp_path_, O_WRONLY | O_CREAT | O_TRUNC, "writing");
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_path_.c_str());
  }
}

void AtomicFileWriter::append(const void* data, size_t size) {
  TESSEL_CHECK(fd_ >= 0) << "write to " << path_ << " after commit";
  const char* p = static_cast<const char*>(data);
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd_, p + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    TESSEL_CHECK(n >= 0) << "error writing " << tmp_path_ << " at byte " << written_ + done << ": " << errno_text()
                         << " (hint: is the disk full?)";
    done += static_cast<size_t>(n);
  }
  written_ += size;
}

void AtomicFileWriter::commit() {
  TESSEL_CHECK(fd_ >= 0) << "commit of " << path_ << " twice";
  TESSEL_CHECK(::fsync(fd_) == 0) << "fsync of " << tmp_path_ << " failed: " << errno_text();
  const int fd = fd_;
  fd_ = -1;
  // close can report a delayed write error; on failure drop the temporary file.
  if (::close(fd) != 0) {
    const std::string why = errno_text();
    ::unlink(tmp_path_.c_str());
    TESSEL_FAIL() << "closing " << tmp_path_ << " failed: " << why;
  }
  if (::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    const std::string why = errno_text();
    ::unlink(tmp_path_.c_str());
    TESSEL_FAIL() << "cannot rename " << tmp_path_ << " to " << path_ << ": " << why;
  }
  fsync_directory(parent_directory(path_));
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  AtomicFileWriter writer(path);
  writer.append(bytes.data(), bytes.size());
  writer.commit();
}

MappedFile::MappedFile(const std::string& path) : path_(path) {
  FileDescriptor fd(open_or_throw(path, O_RDONLY, "reading"));
  struct stat st;
  TESSEL_CHECK(::fstat(fd.get(), &st) == 0) << "cannot stat " << path << ": " << errno_text();
  TESSEL_CHECK(S_ISREG(st.st_mode)) << "cannot map " << path << ": not a regular file";
  size_ = static_cast<size_t>(st.st_size);
  if (size_ == 0) return;
  void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd.get(), 0);
  TESSEL_CHECK(p != MAP_FAILED) << "cannot mmap " << path << " (" << size_ << " bytes): " << errno_text();
  data_ = static_cast<const uint8_t*>(p);
  // The mapping stays valid after the descriptor closes.
}

MappedFile::~MappedFile() { unmap(); }

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)), data_(other.data_), size_(other.size_) {
  other.data_ = nullptr;
  other.size_ = 0;
}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    unmap();
    path_ = std::move(other.path_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

void MappedFile::unmap() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
}

}  // namespace tessel
