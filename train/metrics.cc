#include "train/metrics.h"

#include <cmath>
#include <cstdio>

#include <spdlog/spdlog.h>

#include "train/straggler.h"

namespace tessel {

const double* StepMetrics::find(const std::string& name) const {
  for (const Metric& m : values) {
    if (m.name == name) return &m.value;
  }
  return nullptr;
}

std::string format_duration(double seconds) {
  const int64_t s = std::llround(seconds);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof(buf), "%lldh%02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>(s % 3600 / 60));
  } else {
    std::snprintf(buf, sizeof(buf), "%lldm%02llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  }
  return buf;
}

void ConsoleSink::write(const StepMetrics& m) {
  const std::string line = next_line(m);
  if (!line.empty()) spdlog::info("{}", line);
}

std::string ConsoleSink::next_line(const StepMetrics& m) {
  auto value = [&](const char* name) {
    const double* v = m.find(name);
    return v != nullptr ? *v : 0.0;
  };
  if (std::isfinite(value("loss"))) {
    loss_sum_ += value("loss");
    ++loss_count_;
  }
  if (!m.log_step) return "";
  const double loss = loss_count_ > 0 ? loss_sum_ / static_cast<double>(loss_count_) : value("loss");
  const std::string over = loss_count_ > 1 ? fmt::format(" (mean of {})", loss_count_) : "";
  loss_sum_ = 0.0;
  loss_count_ = 0;
  std::string line = fmt::format(
      "step {:>5}/{} | loss {:.4f}{} | lr {:.2e} | grad norm {:.3f} | {:.0f} tok/s | {:.3f} TFLOP/s | ETA {}", m.step,
      m.steps, loss, over, value("lr"), value("grad_norm"), value("tokens_per_s"), value("tflops"),
      format_duration(m.eta_s));
  if (const double* eval = m.find("eval_loss")) line += fmt::format(" | eval loss {:.4f}", *eval);
  if (const double* scale = m.find("loss_scale")) line += fmt::format(" | loss scale {:g}", *scale);
  if (const double* aux = m.find("aux_loss")) line += fmt::format(" | aux {:.4f}", *aux);
  // train/straggler.h: the slowest rank, when it holds the others up.
  if (const double* slowdown = m.find("straggler_slowdown"); slowdown != nullptr && *slowdown >= kStragglerThreshold)
    line += fmt::format(" | straggler rank {:.0f} {:.2f}x", value("straggler_rank"), *slowdown);
  if (m.overflow)
    line += " | SKIPPED (fp16 overflow: loss scale halved)";
  else if (m.skipped)
    line += " | SKIPPED (non-finite)";
  return line;
}

}  // namespace tessel
