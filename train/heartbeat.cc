#include "train/heartbeat.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "core/io/json.h"
#include "core/measure.h"

namespace tessel {
namespace fs = std::filesystem;

std::string heartbeat_dir(const std::string& out_dir) {
  const char* dir = std::getenv("TESSEL_HEARTBEAT_DIR");
  return dir != nullptr && *dir != '\0' ? std::string(dir) : (fs::path(out_dir) / "heartbeats").string();
}

Heartbeat::Heartbeat(const std::string& out_dir, int rank, const std::string& host, double period_s)
    : rank_(rank), host_(host), period_s_(period_s) {
  char name[32];
  std::snprintf(name, sizeof(name), "rank_%05d.json", rank);
  dir_ = heartbeat_dir(out_dir);
  path_ = (fs::path(dir_) / name).string();
  beat();
  thread_ = std::thread([this] { loop(); });
}

Heartbeat::~Heartbeat() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    if (state_ == "training") state_ = "done";
  }
  wake_.notify_all();
  thread_.join();
  beat();
}

void Heartbeat::set_step(int64_t step) {
  std::lock_guard<std::mutex> lock(mu_);
  step_ = step;
}

void Heartbeat::failed(const std::string& error) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    state_ = "failed";
    error_ = error.substr(0, error.find('\n'));
  }
  beat();
}

void Heartbeat::beat() {
  JsonValue record;
  {
    std::lock_guard<std::mutex> lock(mu_);
    record = JsonValue::object({{"rank", JsonValue::integer(rank_)},
                                {"host", JsonValue::string(host_)},
                                {"pid", JsonValue::integer(getpid())},
                                {"step", JsonValue::integer(step_)},
                                {"time", JsonValue::number(epoch_seconds())},
                                {"state", JsonValue::string(state_)},
                                {"error", JsonValue::string(error_)}});
  }
  std::lock_guard<std::mutex> io(io_mu_);
  std::error_code ec;
  fs::create_directories(dir_, ec);  // (again: the launcher may have cleared it); a beat that fails is skipped
  const std::string tmp = path_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << record.dump() << "\n";
    if (!out.good()) return;
  }
  std::rename(tmp.c_str(), path_.c_str());
}

void Heartbeat::loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait_for(lock, std::chrono::duration<double>(period_s_), [this] { return stop_; });
      if (stop_) return;
    }
    beat();
  }
}

}  // namespace tessel
