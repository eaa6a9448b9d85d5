#include "core/checkpoint/format.h"

#include <cstdio>

namespace tessel {

std::string exp_avg_name(const std::string& name) { return kExpAvgPrefix + name; }
std::string exp_avg_sq_name(const std::string& name) { return kExpAvgSqPrefix + name; }

std::string CheckpointLayout::describe() const {
  std::string s = "tp " + std::to_string(tp) + " x pp " + std::to_string(pp) + " x dp " + std::to_string(dp) +
                  ", zero " + std::to_string(zero);
  if (virtual_stages > 1) s += ", " + std::to_string(virtual_stages) + " virtual stages";
  return s;
}

std::string step_dir_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "step_%08lld", static_cast<long long>(step));
  return buf;
}

int64_t step_of(const std::string& name) {
  if (name.rfind("step_", 0) != 0 || name.size() <= 5) return -1;
  int64_t step = 0;
  for (size_t i = 5; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9' || step > (int64_t{1} << 58)) return -1;
    step = step * 10 + (name[i] - '0');
  }
  return step;
}

}  // namespace tessel
