// The planner against step times measured in published large-scale runs
// (tests/planner/published_runs.yaml, with its sources). Each run goes through `tessel plan`
// (run_plan_command, the command's own code) with every layout knob fixed, on the run's hardware
// and framework profiles; the error table is printed, and the test fails when the mean error is
// over 5% or any run's over 10%.
#include <catch2/catch.hpp>

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "core/config/config.h"
#include "core/io/json.h"
#include "launch/commands.h"

using namespace tessel;

namespace {

constexpr double kMeanTarget = 0.05, kWorstTarget = 0.10;

struct PublishedRun {
  std::string name, hardware, framework;
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
    run.framework = node["framework"].as<std::string>();
    run.set = node["set"].as<std::vector<std::string>>();
    run.step_s = node["step_s"].as<double>();
    runs.push_back(run);
  }
  return runs;
}

// `tessel plan`'s JSON for the run's layout, every knob fixed (its only candidate). `config` is
// a file of the GPT-2 defaults the overrides start from.
JsonValue plan_of(const PublishedRun& run, const std::string& config) {
  const Config c = parse_config("model: {arch: gpt2}\n", run.name, run.set);
  const int64_t gpus = c.parallel.tp * c.parallel.pp;  // every run here is one replica
  std::vector<std::string> args = {config,        "--gpus",      std::to_string(gpus), "--hardware", run.hardware,
                                   "--framework", run.framework, "--format",           "json",       "--set"};
  args.insert(args.end(), run.set.begin(), run.set.end());
  std::ostringstream out;
  REQUIRE(run_plan_command(args, out) == 0);
  JsonValue plan = parse_json(out.str(), "tessel plan");
  REQUIRE(plan.find("considered")->as_int() == 1);  // exactly the published layout
  return plan.find("candidates")->as_array().front();
}

}  // namespace

TEST_CASE("tessel plan predicts published step times within 5% on average and 10% at worst", "[cpu][planner]") {
  const std::vector<PublishedRun> runs = published_runs();
  REQUIRE(runs.size() >= 8);
  const std::string config = (std::filesystem::temp_directory_path() / "tessel-published-gpt2.yaml").string();
  std::ofstream(config) << "model: {arch: gpt2}\n";
  double sum = 0, worst = 0;
  std::string worst_name;
  char line[512];
  std::snprintf(line, sizeof(line), "%-36s %10s %10s %8s   %s\n", "run", "measured", "predicted", "error",
                "parts of the prediction over 3%");
  std::cout << line;
  for (const PublishedRun& run : runs) {
    const JsonValue candidate = plan_of(run, config);
    const double step = candidate.find("step_time_s")->as_double();
    const double error = step / run.step_s - 1;
    sum += std::abs(error);
    if (std::abs(error) > worst) worst = std::abs(error), worst_name = run.name;
    std::string parts;
    for (const auto& [part, seconds] : candidate.find("time_s")->as_object()) {
      const double share = seconds.as_double() / step;
      if (share > 0.03)
        parts += (parts.empty() ? "" : ", ") + part + " " + std::to_string(std::lround(100 * share)) + "%";
    }
    std::snprintf(line, sizeof(line), "%-36s %9.2fs %9.2fs %+7.1f%%   %s\n", run.name.c_str(), run.step_s, step,
                  100 * error, parts.c_str());
    std::cout << line;
  }
  std::filesystem::remove(config);
  const double mean = sum / static_cast<double>(runs.size());
  std::printf("mean |error| %.1f%% (target %.0f%%), worst %.1f%% on %s (target %.0f%%)\n", 100 * mean,
              100 * kMeanTarget, 100 * worst, worst_name.c_str(), 100 * kWorstTarget);
  CHECK(mean <= kMeanTarget);
  CHECK(worst <= kWorstTarget);
}
