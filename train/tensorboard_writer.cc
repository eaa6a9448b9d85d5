#include "train/tensorboard_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "core/io/crc32c.h"
#include "event.pb.h"

namespace tessel {
namespace {

void append_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
}

double system_seconds() {
  using namespace std::chrono;
  return duration_cast<duration<double>>(system_clock::now().time_since_epoch()).count();
}

// mkdir -p: each missing component in turn; an existing directory is fine.
void make_directories(const std::string& dir) {
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    const std::string prefix = dir.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
      TESSEL_FAIL() << "cannot create TensorBoard log directory " << prefix << ": " << std::strerror(errno)
                    << " (hint: check the logging.tensorboard_dir path "
                    << "and its permissions)";
    }
  }
  struct stat st;
  TESSEL_CHECK(::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
      << "TensorBoard log directory " << dir << " exists but is not a directory";
}

}  // namespace

std::string tfrecord_frame(const std::string& data) {
  std::string out;
  out.reserve(data.size() + 16);
  append_le(out, data.size(), 8);
  append_le(out, crc32c_mask(crc32c(out.data(), 8)), 4);
  out += data;
  append_le(out, crc32c_mask(crc32c(data.data(), data.size())), 4);
  return out;
}

TensorBoardWriter::TensorBoardWriter(const std::string& log_dir, std::function<double()> clock)
    : clock_(clock ? std::move(clock) : std::function<double()>(system_seconds)) {
  TESSEL_CHECK(!log_dir.empty()) << "TensorBoard log directory is empty";
  make_directories(log_dir);
  const double now = clock_();
  char host[256] = {0};
  if (::gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') std::snprintf(host, sizeof(host), "localhost");
  char stamp[32];
  std::snprintf(stamp, sizeof(stamp), "%010lld", static_cast<long long>(std::floor(now)));
  const std::string base = log_dir + "/events.out.tfevents." + stamp + "." + host + ".tessel";
  // Two writers started in the same second must not share a file: O_EXCL, then a counter.
  for (int attempt = 0; fd_ < 0; ++attempt) {
    path_ = attempt == 0 ? base : base + "." + std::to_string(attempt);
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ < 0 && errno != EEXIST) {
      TESSEL_FAIL() << "cannot create TensorBoard event file " << path_ << ": " << std::strerror(errno);
    }
    TESSEL_CHECK(attempt < 1000) << "cannot find a free event file name like " << base;
  }
  tensorboard::Event event;
  event.set_wall_time(now);
  event.set_file_version("brain.Event:2");
  append_event(event.SerializeAsString());
  // TensorBoard lists a run once its file has a valid first record.
  flush();
}

TensorBoardWriter::~TensorBoardWriter() {
  // A destructor must not throw; a failed final flush loses only the last points.
  try {
    flush();
  } catch (const Error&) {
  }
  if (fd_ >= 0) ::close(fd_);
}

void TensorBoardWriter::add_scalar(const std::string& tag, float value, int64_t step) {
  tensorboard::Event event;
  event.set_wall_time(clock_());
  event.set_step(step);
  tensorboard::SummaryValue* v = event.mutable_summary()->add_value();
  v->set_tag(tag);
  v->set_simple_value(value);
  append_event(event.SerializeAsString());
}

void TensorBoardWriter::append_event(const std::string& serialized_event) {
  pending_ += tfrecord_frame(serialized_event);
}

void TensorBoardWriter::write(const StepMetrics& m) {
  for (const Metric& v : m.values) {
    if (!v.tensorboard.empty()) add_scalar(v.tensorboard, static_cast<float>(v.value), m.step);
  }
  if (m.log_step) flush();
}

void TensorBoardWriter::flush() {
  size_t done = 0;
  while (done < pending_.size()) {
    const ssize_t n = ::write(fd_, pending_.data() + done, pending_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      pending_.erase(0, done);
      TESSEL_FAIL() << "error writing TensorBoard event file " << path_ << ": " << std::strerror(errno)
                    << " (hint: is the disk full?)";
    }
    done += static_cast<size_t>(n);
  }
  pending_.clear();
}

}  // namespace tessel
