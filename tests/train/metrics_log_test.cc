#include "train/metrics_log.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <sstream>

#include "core/error.h"
#include "core/io/file.h"
#include "core/io/json.h"
#include "core/io/temp_dir.h"
#include "core/measure.h"

namespace tessel {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST_CASE("metrics log writes one JSON object per line, step first", "[metrics_log]") {
  TempDir dir;
  const std::string path = dir.file("metrics.jsonl");
  {
    MetricsLog log(path);
    log.log(1, {{"loss", 3.5}, {"lr", 0.0006}});
    log.log(2, {{"loss", 3.25}, {"grad \"norm\"", 1.0}});
  }
  const std::string text = read_file(path);
  CHECK(text ==
        "{\"step\":1,\"loss\":3.5,\"lr\":0.0006}\n"
        "{\"step\":2,\"loss\":3.25,\"grad \\\"norm\\\"\":1}\n");
  for (const std::string& line : lines_of(text)) CHECK(parse_json(line, path).is_object());
}

TEST_CASE("metrics log lines reach the file before the log is closed", "[metrics_log]") {
  TempDir dir;
  const std::string path = dir.file("m.jsonl");
  MetricsLog log(path);
  log.log(5, {{"loss", 1.0}});
  CHECK(read_file(path) == "{\"step\":5,\"loss\":1}\n");
}

TEST_CASE("metrics log writes NaN and infinities as null", "[metrics_log]") {
  const std::string line = metrics_line(3, {{"loss", std::nan("")},
                                            {"up", std::numeric_limits<double>::infinity()},
                                            {"down", -std::numeric_limits<double>::infinity()},
                                            {"ok", 0.1}});
  CHECK(line == "{\"step\":3,\"loss\":null,\"up\":null,\"down\":null,\"ok\":0.1}\n");
  const JsonValue v = parse_json(line, "line");
  CHECK(v.find("loss")->is_null());
  CHECK(v.find("ok")->as_double() == 0.1);  // shortest text still reads back exactly
}

TEST_CASE("metrics log appends to an existing file", "[metrics_log]") {
  TempDir dir;
  const std::string path = dir.file("m.jsonl");
  { MetricsLog(path).log(1, {{"loss", 2.0}}); }
  { MetricsLog(path).log(2, {{"loss", 1.5}}); }
  CHECK(lines_of(read_file(path)) == std::vector<std::string>{"{\"step\":1,\"loss\":2}", "{\"step\":2,\"loss\":1.5}"});
}

TEST_CASE("metrics log stamps each step with the time it was written, and sums a field since a time", "[metrics_log]") {
  TempDir dir;
  const std::string path = dir.file("m.jsonl");
  const double before = epoch_seconds() - 1;
  {
    MetricsLog log(path);
    StepMetrics m;
    m.step = 1;
    m.values = {{"step_time_s", 2.0, ""}};
    log.write(m);
  }
  const JsonValue v = parse_json(lines_of(read_file(path)).at(0), path);
  REQUIRE(v.find("time") != nullptr);
  CHECK(v.find("time")->as_double() >= before);
  CHECK(v.find("time")->as_double() <= epoch_seconds() + 1);
  // Lines written before `since` (or without a time) belong to an earlier job.
  { MetricsLog(path).log(2, {{"step_time_s", 3.0}, {"time", 100.0}}); }
  { MetricsLog(path).log(3, {{"step_time_s", 5.0}}); }
  CHECK(sum_metric(path, "step_time_s", 0) == 10.0);
  CHECK(sum_metric(path, "step_time_s", before) == 2.0);
  CHECK(sum_metric(path, "step_time_s", 50.0) == 5.0);
  CHECK(sum_metric(dir.file("none.jsonl"), "step_time_s", 0) == 0.0);
}

TEST_CASE("metrics log refuses a field named step and an unwritable path", "[metrics_log]") {
  CHECK_THROWS_WITH(metrics_line(1, {{"step", 1.0}}), Catch::Contains("reserved"));
  TempDir dir;
  const std::string bad = dir.file("missing/dir/m.jsonl");
  CHECK_THROWS_WITH(MetricsLog{bad}, Catch::Contains(bad));
}

}  // namespace
}  // namespace tessel
