// Logging setup (core/logging.h): rank prefixes and level names.
#include "core/logging.h"

#include <spdlog/sinks/ostream_sink.h>
#include <catch2/catch.hpp>

#include <regex>
#include <sstream>

#include "core/error.h"

namespace tessel {
namespace {

TEST_CASE("every log line carries time, rank and grid coordinates", "[logging]") {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  auto logger = make_logger(3, "tp0 dp1 pp0", spdlog::level::info, sink);
  logger->info("step {} loss {:.2f}", 10, 3.21);
  logger->debug("hidden below the level");
  const std::string text = out.str();
  CHECK(std::regex_match(text, std::regex(R"(\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] )"
                                          R"(\[rank 3 tp0 dp1 pp0\] \[info\] step 10 loss 3\.21\n)")));
}

TEST_CASE("the rank prefix needs no coordinates, and '%' in them is literal", "[logging]") {
  CHECK(rank_prefix(0) == "[rank 0]");
  CHECK(rank_prefix(7, "tp1 pp0") == "[rank 7 tp1 pp0]");
  CHECK(rank_prefix(-1, "launch") == "[launch]");  // the launcher is not a rank
  std::ostringstream out;
  auto logger = make_logger(1, "100%", spdlog::level::info, std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  logger->warn("x");
  CHECK(out.str().find("[rank 1 100%] [warning] x") != std::string::npos);
}

TEST_CASE("init_logging installs the default logger", "[logging]") {
  init_logging(2, "", spdlog::level::warn);
  REQUIRE(spdlog::default_logger() != nullptr);
  CHECK(spdlog::default_logger()->level() == spdlog::level::warn);
  init_logging(0);  // again, as the launcher does once coordinates are known
  CHECK(spdlog::default_logger()->level() == spdlog::level::info);
}

TEST_CASE("log levels are read from their names", "[logging]") {
  CHECK(log_level_from_string("debug") == spdlog::level::debug);
  CHECK(log_level_from_string("WARN") == spdlog::level::warn);
  CHECK(log_level_from_string("warning") == spdlog::level::warn);
  CHECK(log_level_from_string("off") == spdlog::level::off);
  CHECK_THROWS_WITH(log_level_from_string("loud"),
                    Catch::Contains("unknown log level 'loud'; valid levels: trace, debug"));
}

}  // namespace
}  // namespace tessel
