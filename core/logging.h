// Logging setup: spdlog with every line prefixed by the time, this rank and, once known, its
// grid coordinates, e.g.
//   [2024-05-01 12:00:00.123] [rank 3 tp0 dp1 pp0] [info] step 10 loss 3.21
//
// spdlog's default logger is process-wide: it is the one global Tessel allows (spdlog::info()
// and friends use it). init_logging replaces it, so call it early on each rank and again when
// the topology adds coordinates; spdlog's loggers are thread-safe (the _mt sinks are used).
// Logs go to stderr so that commands printing JSON on stdout stay machine-readable.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace tessel {

// "[rank 3]" or "[rank 3 tp0 dp1 pp0]" for coords "tp0 dp1 pp0"; a negative rank (a process
// that is not a rank, like the launcher) gives "[coords]", e.g. "[launch]".
std::string rank_prefix(int rank, const std::string& coords = "");

// A logger named "tessel" writing to `sink` with the rank prefix and the given level.
// Not registered with spdlog; tests use it with an ostream sink.
std::shared_ptr<spdlog::logger> make_logger(int rank, const std::string& coords, spdlog::level::level_enum level,
                                            spdlog::sink_ptr sink);

// Makes a stderr logger (colored on a terminal) spdlog's default logger.
void init_logging(int rank, const std::string& coords = "", spdlog::level::level_enum level = spdlog::level::info);

// "trace", "debug", "info", "warn" (or "warning"), "error", "critical", "off", any case;
// throws tessel::Error listing the valid names otherwise.
spdlog::level::level_enum log_level_from_string(const std::string& name);

}  // namespace tessel
