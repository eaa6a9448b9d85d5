// The planner's cost model against step times measured in published large-scale runs
// (tests/planner/published_runs.yaml, with its sources): the error table is printed, and the
// test fails when the mean error is over 5% or any run's over 10%.
#include <catch2/catch.hpp>

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdio>
#include <iostream>

#include "parallel/planner/cost_model.h"

using namespace tessel;

namespace {

constexpr double kMeanTarget = 0.05, kWorstTarget = 0.10;

struct PublishedRun {
  std::string name, hardware;
  Implementation impl;
  std::vector<std::string> set;
  double step_s = 0;
};

std::vector<PublishedRun> published_runs() {
  const std::string path = std::string(TESSEL_TEST_DATA_DIR) + "/planner/published_runs.yaml";
  std::vector<PublishedRun> runs;
  for (const YAML::Node& node : YAML::LoadFile(path)["runs"]) {
    PublishedRun run;
    run.name = node["name"].as<std::string>();
    run.hardware = node["hardware"].as<std::string>();
    const std::string attention = node["attention"].as<std::string>();
    REQUIRE((attention == "fused" || attention == "unfused"));
    run.impl.attention = attention == "fused" ? AttentionImpl::kFused : AttentionImpl::kUnfused;
    run.impl.pp_scatter_gather = node["pp_scatter_gather"].as<bool>();
    run.impl.hidden_dropout = node["hidden_dropout"].as<bool>();
    run.impl.optimizer_bytes_per_param = node["optimizer_bytes_per_param"].as<double>();
    run.set = node["set"].as<std::vector<std::string>>();
    run.step_s = node["step_s"].as<double>();
    runs.push_back(run);
  }
  return runs;
}

}  // namespace

TEST_CASE("the cost model predicts published step times within 5% on average and 10% at worst", "[cpu][planner]") {
  const std::vector<PublishedRun> runs = published_runs();
  REQUIRE(runs.size() >= 8);
  double sum = 0, worst = 0;
  std::string worst_name;
  char line[256];
  std::snprintf(line, sizeof(line), "%-36s %10s %10s %8s   %s\n", "run", "measured", "predicted", "error",
                "largest parts of the prediction");
  std::cout << line;
  for (const PublishedRun& run : runs) {
    const Config config = parse_config("model: {arch: gpt2}\n", run.name, run.set);
    const int64_t dp = 1;  // every published run here is one replica
    const PlanEstimate e =
        estimate_layout(config, layout_of(config, static_cast<int>(dp)), load_hardware(run.hardware), 0.1, run.impl);
    const double error = e.time.total / run.step_s - 1;
    sum += std::abs(error);
    if (std::abs(error) > worst) worst = std::abs(error), worst_name = run.name;
    std::string parts;
    for (const auto& [part, seconds] : e.time.parts())
      if (seconds > 0.03 * e.time.total)
        parts += part + " " + std::to_string(static_cast<int>(100 * seconds / e.time.total + 0.5)) + "%, ";
    std::snprintf(line, sizeof(line), "%-36s %9.2fs %9.2fs %+7.1f%%   %s\n", run.name.c_str(), run.step_s, e.time.total,
                  100 * error, parts.substr(0, parts.size() - 2).c_str());
    std::cout << line;
  }
  const double mean = sum / static_cast<double>(runs.size());
  std::printf("mean |error| %.1f%% (target %.0f%%), worst %.1f%% on %s (target %.0f%%)\n", 100 * mean,
              100 * kMeanTarget, 100 * worst, worst_name.c_str(), 100 * kWorstTarget);
  CHECK(mean <= kMeanTarget);
  CHECK(worst <= kWorstTarget);
}
