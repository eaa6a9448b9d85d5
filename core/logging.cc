// Logging setup; see logging.h.
#include "core/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <cctype>

#include "core/error.h"

namespace tessel {

std::string rank_prefix(int rank, const std::string& coords) {
  if (rank < 0) return "[" + coords + "]";  // a process that is not a rank (the launcher)
  std::string prefix = "[rank " + std::to_string(rank);
  if (!coords.empty()) prefix += " " + coords;
  return prefix + "]";
}

namespace {

std::string pattern_for(int rank, const std::string& coords) {
  // The prefix is literal text inside an spdlog pattern: '%' must be doubled.
  std::string literal;
  for (char ch : rank_prefix(rank, coords)) {
    literal += ch;
    if (ch == '%') literal += '%';
  }
  return "[%Y-%m-%d %H:%M:%S.%e] " + literal + " [%^%l%$] %v";
}

}  // namespace

std::shared_ptr<spdlog::logger> make_logger(int rank, const std::string& coords, spdlog::level::level_enum level,
                                            spdlog::sink_ptr sink) {
  auto logger = std::make_shared<spdlog::logger>("tessel", std::move(sink));
  logger->set_pattern(pattern_for(rank, coords));
  logger->set_level(level);
  // Warnings and errors reach the terminal even if the process dies right after.
  logger->flush_on(spdlog::level::warn);
  return logger;
}

void init_logging(int rank, const std::string& coords, spdlog::level::level_enum level) {
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  spdlog::set_default_logger(make_logger(rank, coords, level, std::move(sink)));
}

spdlog::level::level_enum log_level_from_string(const std::string& name) {
  std::string lower;
  for (char ch : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (lower == "warning") lower = "warn";
  if (lower == "crit") lower = "critical";
  // spdlog::level::from_str answers `off` for any unknown name, so check by round trip.
  const spdlog::level::level_enum level = spdlog::level::from_str(lower);
  TESSEL_CHECK(lower == "off" || level != spdlog::level::off)
      << "unknown log level '" << name << "'; valid levels: trace, debug, info, warn, error, critical, off";
  return level;
}

}  // namespace tessel
