#include "train/metrics_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "core/error.h"
#include "core/io/file.h"
#include "core/io/json.h"
#include "core/measure.h"

namespace tessel {

std::string metrics_line(int64_t step, const std::vector<std::pair<std::string, double>>& fields) {
  std::string line = "{\"step\":" + std::to_string(step);
  for (const auto& [name, value] : fields) {
    TESSEL_CHECK(name != "step") << "metrics log: field name \"step\" is reserved for the step";
    line += ',';
    append_json_string(line, name);
    line += ':';
    append_json_number(line, value);
  }
  line += "}\n";
  return line;
}

void MetricsLog::write(const StepMetrics& m) {
  std::vector<std::pair<std::string, double>> fields;
  for (const Metric& v : m.values) fields.emplace_back(v.name, v.value);
  fields.emplace_back("time", std::round(epoch_seconds() * 1000.0) / 1000.0);
  log(m.step, fields);
}

MetricsLog::MetricsLog(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  TESSEL_CHECK(fd_ >= 0) << "cannot open metrics log " << path << " for appending: " << std::strerror(errno)
                         << " (hint: check that its directory exists and is writable)";
}

MetricsLog::~MetricsLog() {
  if (fd_ >= 0) ::close(fd_);
}

void MetricsLog::log(int64_t step, const std::vector<std::pair<std::string, double>>& fields) {
  const std::string line = metrics_line(step, fields);
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    TESSEL_CHECK(n >= 0) << "error appending to metrics log " << path_ << " at step " << step << ": "
                         << std::strerror(errno) << " (hint: is the disk full?)";
    done += static_cast<size_t>(n);
  }
}

double sum_metric(const std::string& path, const std::string& key, double since) {
  if (!path_exists(path)) return 0;
  std::istringstream in(read_file(path));
  double sum = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const JsonValue record = parse_json(line, path);
    const JsonValue* time = record.find("time");
    const double written = time != nullptr && time->is_number() ? time->as_double() : 0.0;
    if (since > 0 && written < since) continue;
    if (const JsonValue* v = record.find(key); v != nullptr && v->is_number()) sum += v->as_double();
  }
  return sum;
}

void truncate_metrics_after(const std::string& path, int64_t step) {
  if (!path_exists(path)) return;
  std::istringstream in(read_file(path));
  std::string kept, line;
  while (std::getline(in, line)) {
    // Lines start with {"step":N, as metrics_line writes them.
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    const int64_t s = std::strtoll(line.c_str() + colon + 1, nullptr, 10);
    if (step > 0 && s <= step) kept += line + "\n";
  }
  write_file_atomic(path, kept);
}

}  // namespace tessel
