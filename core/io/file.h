// Small RAII helpers over POSIX files: whole-file reads, read-only memory maps, and atomic,
// durable whole-file writes.
//
// Every failure throws tessel::Error naming the path and the system's reason (strerror). A
// MappedFile owns its mapping and unmaps it on destruction; it is movable, not copyable, and
// may be read from any number of threads. The free functions are thread-safe as long as
// callers do not write the same path concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace tessel {

// The whole file as bytes.
std::string read_file(const std::string& path);

bool path_exists(const std::string& path);

// Replaces `path` with `bytes` so that readers see either the old or the new file, never a
// torn one, and the new file survives a crash once this returns: writes `path.tmp`, fsyncs it,
// renames it over `path`, then fsyncs the directory so that the rename itself is durable.
void write_file_atomic(const std::string& path, const std::string& bytes);

// Writes a file under a temporary name and publishes it atomically and durably on commit():
// the streaming form of write_file_atomic, for files too large to build in memory (checkpoints).
// Writes go to `path.tmp`; commit() fsyncs, closes and renames it over `path`, then fsyncs the
// directory. Destroying an uncommitted writer removes the temporary file, so a failed write
// leaves the previous `path` untouched. Not copyable; used by one thread at a time.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const std::string& path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void append(const void* data, size_t size);
  void commit();
  uint64_t bytes_written() const { return written_; }

 private:
  std::string path_;
  std::string tmp_path_;
  int fd_ = -1;
  uint64_t written_ = 0;
};

// Makes the entries of a directory (created, renamed or removed files) durable.
void fsync_directory(const std::string& path);

// The directory part of a path ("." when it has none), as POSIX dirname would give.
std::string parent_directory(const std::string& path);

// A read-only, private memory map of a whole file. An empty file maps to data() == nullptr and
// size() == 0 (mmap refuses zero-length mappings).
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  void unmap();

  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace tessel
