#include "train/stop_signal.h"

#include <atomic>

#include "core/error.h"

namespace tessel {
namespace {

constexpr int kSignals[3] = {SIGTERM, SIGINT, SIGUSR1};
std::atomic<int> g_stop_signal{0};  // the one process-wide state a handler may touch
std::atomic<bool> g_installed{false};

void on_signal(int sig) {
  int expected = 0;
  if (g_stop_signal.compare_exchange_strong(expected, sig)) return;  // first: ask to stop
  if (sig == SIGUSR1) return;
  // Second SIGTERM/SIGINT: the default action, now.
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

}  // namespace

StopSignal::StopSignal() {
  TESSEL_CHECK(!g_installed.exchange(true)) << "StopSignal: one at a time";
  g_stop_signal = 0;
  struct sigaction action = {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &action, &previous_[i]);
}

StopSignal::~StopSignal() {
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &previous_[i], nullptr);
  g_installed = false;
}

bool StopSignal::requested() const { return g_stop_signal.load() != 0; }
int StopSignal::signal_number() const { return g_stop_signal.load(); }

}  // namespace tessel
