// An exclusive lock on a directory that one run writes into (run.out_dir, a checkpoint root), so
// that a second run pointed at it fails at its start instead of overwriting the first run's
// checkpoints and metrics.
//
// The lock is flock(2) on <dir>/.tessel.lock, held on an open descriptor for as long as the
// DirLock lives. The kernel releases it when the descriptor closes, also when the process is
// killed, so a lock is never stale; the file stays behind, harmless. It holds the holder's
// description (JSON: pid, host, start time, command line), which a refused run prints. flock
// locks belong to the open file, so two DirLocks on one directory conflict even inside one
// process. The descriptor is close-on-exec: programs the holder starts do not inherit the lock.
// On a file system without flock (some network mounts) no lock is taken and held() says so.
// Movable, not copyable; one thread at a time.
#pragma once

#include <string>

namespace tessel {

inline constexpr const char* kDirLockFile = ".tessel.lock";

class DirLock {
 public:
  // Creates `dir` if needed and locks it, or throws naming the run that holds it. `key` is the
  // setting that named dir ("run.out_dir"), for the messages.
  DirLock(const std::string& dir, const std::string& key);
  ~DirLock();
  DirLock(DirLock&& other) noexcept;
  DirLock& operator=(DirLock&& other) noexcept;
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

  // False when the file system does not support locks; the run goes on unguarded.
  bool held() const { return held_; }
  const std::string& path() const { return path_; }  // <dir>/.tessel.lock

 private:
  void release();

  std::string path_;
  int fd_ = -1;
  bool held_ = false;
};

}  // namespace tessel
