#include "core/io/dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <utility>

#include "core/error.h"
#include "core/io/file.h"
#include "core/io/json.h"
#include "core/text_escape.h"

namespace tessel {
namespace fs = std::filesystem;
namespace {

// This process's command line, its arguments joined by spaces (empty where /proc is missing).
std::string command_line() {
  std::string text;
  try {
    text = read_file("/proc/self/cmdline");
  } catch (const Error&) {
    return "";
  }
  while (!text.empty() && text.back() == '\0') text.pop_back();
  for (char& c : text) c = c == '\0' ? ' ' : c;
  constexpr size_t kMax = 1000;  // a description, not an archive of a long --set list
  return text.size() > kMax ? text.substr(0, kMax) + "..." : text;
}

std::string host_name() {
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') return "localhost";
  return host;
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

// The holder's description from the lock file, as a phrase: "pid 12 on host a, started ...
// (command)". The holder may not have written it yet, or a crash may have left an older one.
std::string describe_holder(int fd) {
  std::string text;
  char buffer[4096];
  for (off_t offset = 0; text.size() < (1 << 16);) {
    const ssize_t n = ::pread(fd, buffer, sizeof(buffer), offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buffer, static_cast<size_t>(n));
    offset += n;
  }
  try {
    const JsonValue j = parse_json(text, "lock file");
    const JsonValue* pid = j.find("pid");
    const JsonValue* host = j.find("host");
    const JsonValue* started = j.find("started");
    const JsonValue* command = j.find("command");
    if (pid != nullptr && host != nullptr && started != nullptr && command != nullptr) {
      return "pid " + std::to_string(pid->as_int()) + " on host " + quote_escaped(host->as_string()) + ", started " +
             started->as_string() + " (" + quote_escaped(command->as_string()) + ")";
    }
  } catch (const Error&) {
  }
  return "another process (which has not written its description yet)";
}

}  // namespace

DirLock::DirLock(const std::string& dir, const std::string& key) : path_((fs::path(dir) / kDirLockFile).string()) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  TESSEL_CHECK(!ec) << "cannot create directory '" << dir << "' (" << key << "): " << ec.message() << "; hint: set "
                    << key << " to a writable path";
  // O_NOFOLLOW: the lock file is the run's own, never a link to some other file it would rewrite.
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  TESSEL_CHECK(fd_ >= 0) << "cannot open the lock file " << path_ << " of " << key << " " << dir << ": "
                         << std::strerror(errno) << "; hint: set " << key << " to a writable directory";
  int rc;
  do {
    rc = ::flock(fd_, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0 && (errno == ENOLCK || errno == EOPNOTSUPP || errno == ENOSYS)) {
    release();  // no locks on this file system: held() tells the caller
    return;
  }
  if (rc != 0) {
    const int error = errno;
    const std::string holder = error == EWOULDBLOCK ? describe_holder(fd_) : "";
    release();
    TESSEL_CHECK(error == EWOULDBLOCK) << "cannot lock " << path_ << " (" << key << "): " << std::strerror(error);
    TESSEL_FAIL() << key << " " << dir << " is in use by another run: " << holder << " holds " << path_
                  << "; two runs writing one directory overwrite each other's checkpoints and metrics; hint: use "
                  << "another " << key << ", or stop that run first (its lock goes when it exits)";
  }
  held_ = true;
  const std::string description = JsonValue::object({{"pid", JsonValue::integer(::getpid())},
                                                     {"host", JsonValue::string(host_name())},
                                                     {"started", JsonValue::string(utc_now())},
                                                     {"command", JsonValue::string(command_line())}})
                                      .dump() +
                                  "\n";
  // Informational only: a failed write leaves the lock held and a refused run's message vaguer.
  if (::ftruncate(fd_, 0) == 0) {
    const ssize_t written = ::pwrite(fd_, description.data(), description.size(), 0);
    (void)written;
  }
}

DirLock::~DirLock() { release(); }

DirLock::DirLock(DirLock&& other) noexcept
    : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)), held_(std::exchange(other.held_, false)) {}

DirLock& DirLock::operator=(DirLock&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    held_ = std::exchange(other.held_, false);
  }
  return *this;
}

void DirLock::release() {
  // Closing the descriptor releases the lock; the file stays, describing its last holder.
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  held_ = false;
}

}  // namespace tessel
