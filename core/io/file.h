// Small RAII helpers over POSIX files: whole-file reads, read-only memory maps, atomic,
// durable whole-file writes, and the check that a name read from a file stays in its directory.
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

// The whole file as bytes. A file of more than max_bytes is refused before any of it is read:
// a file of a directory that may have been crafted (a manifest, an index, `latest`) could claim
// gigabytes, sparse on disk.
// Without a bound of the caller's, 1 GiB: no file Tessel reads whole is near it, and a config,
// a tokenizer file or /dev/zero given by mistake must not exhaust memory.
constexpr uint64_t kReadFileMaxBytes = uint64_t{1} << 30;
std::string read_file(const std::string& path, uint64_t max_bytes = kReadFileMaxBytes);

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

// `path` with every symlink followed and "." and ".." resolved (std::filesystem::
// weakly_canonical: the part that exists is resolved, the rest appended). A symlink loop, or any
// other reason the system gives for not resolving it, throws naming `what` and the path.
std::string resolved_path(const std::string& path, const std::string& what);

// Whether `path` lies strictly inside `dir`, both resolved (resolved_path).
bool path_is_inside(const std::string& path, const std::string& dir);

// dir + "/" + name, for a `name` read from a file that describes `dir` (a checkpoint manifest's
// file names, a Hugging Face index's shard names, `latest`). Such files may have been edited or
// crafted, so every reader of them takes its names through here, the one place that checks:
// `name` is one plain name (not empty, not absolute, no '/', not "." or "..", no NUL byte); with
// every symlink followed it still lies inside dir; and it is not a symlink loop, nor a FIFO or
// device (a FIFO would block its reader forever). Whether it exists is the caller's to check.
// `where` names the file and key the name was read from ("<dir>/manifest.pb, files[0].name").
std::string contained_path(const std::string& dir, const std::string& name, const std::string& where);

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
