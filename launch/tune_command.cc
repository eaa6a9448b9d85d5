#include "launch/commands.h"
#include "launch/usage.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <thread>

#include "core/config/config.h"
#include "core/error.h"
#include "core/io/file.h"
#include "core/io/json.h"
#include "launch/cli_args.h"
#include "launch/launcher.h"
#include "parallel/planner/calibration.h"
#include "parallel/planner/planner.h"

namespace tessel {
namespace fs = std::filesystem;
namespace {

// Median step time in seconds of `tessel bench step` on the layout, run under mpirun.
double measure(const std::string& config, const std::vector<std::string>& overrides, const PlanLayout& l, int64_t steps,
               const std::string& log) {
  const int ranks = l.tp * l.pp * l.dp;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::string> argv = {"mpirun", "-np", std::to_string(ranks), "--oversubscribe", "--bind-to", "none"};
  if (geteuid() == 0) argv.push_back("--allow-run-as-root");
  const std::vector<std::string> run = {"-x",
                                        "OMP_NUM_THREADS=" + std::to_string(std::max(1, cores / ranks)),
                                        tessel_executable(),
                                        "bench",
                                        "step",
                                        config,
                                        "--set"};
  const std::vector<std::string> layout = layout_overrides(l);
  const std::vector<std::string> timing = {"--steps", std::to_string(steps), "--warmup", "1"};
  for (const std::vector<std::string>* part : {&run, &overrides, &layout, &timing}) {
    argv.insert(argv.end(), part->begin(), part->end());
  }
  const std::string command = shell_join(argv) + " 2>>" + shell_join({log});
  FILE* pipe = popen(command.c_str(), "r");
  TESSEL_CHECK(pipe != nullptr) << "tessel tune: cannot run " << command;
  std::string output;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof(buf), pipe)) > 0;) output.append(buf, n);
  const int status = pclose(pipe);
  TESSEL_CHECK(status == 0) << "tessel tune: the run of " << l.describe() << " failed (status " << status << "); see "
                            << log << "\n  command: " << command;
  const std::string line = output.substr(output.find('{'));
  const JsonValue j = parse_json(line.substr(0, line.find('\n')), "tessel bench step output");
  return j.find("ms_per_step")->as_double() / 1000.0;
}

}  // namespace

int run_tune_command(const std::vector<std::string>& args) { return run_tune_command(args, std::cout); }

int run_tune_command(const std::vector<std::string>& args, std::ostream& out) {
  const ParsedArgs a = parse_args(args, "tessel tune", {"--gpus", "--hardware", "--top", "--steps", "--out"});
  TESSEL_CHECK(a.positional.size() == 1) << command_usage("tune");
  const std::string config_path = a.positional[0];
  Config config = load_config(config_path, a.overrides);
  const int gpus =
      static_cast<int>(a.get_int("--gpus", std::max(1u, std::thread::hardware_concurrency()), 1, kMaxGpus));
  const int64_t top = a.get_int("--top", 4), steps = a.get_int("--steps", 3);
  TESSEL_CHECK(top >= 1 && steps >= 1) << "--top and --steps must be at least 1";
  const HardwareProfile hw = load_hardware(a.get("--hardware", "cpu-local"));
  // The layout knobs given with --set stay fixed, as in `tessel plan`; the rest are overrides of
  // the model and the batch, passed to every run.
  const PlanConstraints fixed = fixed_knobs(a.overrides, config);
  const std::vector<std::string> passed = other_overrides(a.overrides);
  // Uncalibrated: the ratios recorded below are against the cost model's own times.
  const Plan plan = plan_layouts(config, gpus, hw, fixed);
  const size_t k = std::min<size_t>(plan.ranked.size(), static_cast<size_t>(top));
  const std::string out_path = a.get("--out", (fs::path(config.run.out_dir) / "tuned.yaml").string());
  fs::create_directories(fs::path(out_path).parent_path().empty() ? "." : fs::path(out_path).parent_path());
  const std::string log = out_path + ".log";
  out << "tuning " << config_path << " on " << gpus << " ranks (" << hw.name << "): the top " << k << " of "
      << plan.ranked.size() << " planned layouts, " << steps << " steps each (their errors go to " << log << ")\n\n";
  char line[256];
  std::snprintf(line, sizeof(line), "%3s  %-64s %12s %12s %9s\n", "#", "layout", "predicted s", "measured s", "ratio");
  out << line << std::flush;
  std::vector<double> measured, ratios;
  for (size_t i = 0; i < k; ++i) {
    const PlanEstimate& e = plan.ranked[i];
    measured.push_back(measure(config_path, passed, e.layout, steps, log));
    ratios.push_back(measured.back() / e.time.total);
    std::snprintf(line, sizeof(line), "%3zu  %-64s %12.4g %12.4g %9.2f\n", i + 1, e.layout.describe().c_str(),
                  e.time.total, measured.back(), ratios.back());
    out << line << std::flush;
  }
  const size_t best = static_cast<size_t>(std::min_element(measured.begin(), measured.end()) - measured.begin());
  double worst = 0;
  for (double r : ratios) worst = std::max(worst, std::abs(r - 1));
  out << "\nmeasured fastest: #" << best + 1 << " " << plan.ranked[best].layout.describe() << " ("
      << (best == 0 ? "as predicted" : "the plan ranked it #" + std::to_string(best + 1)) << "); predictions within "
      << static_cast<int>(std::lround(100 * worst)) << "% of measured";
  if (k >= 2)
    out << "; the planned #1 and #2 measured "
        << (measured[0] <= measured[1] ? "in the same order" : "in reverse order");
  out << "\n";
  // The winner as a config: the file's config with the layout set.
  const Config tuned = parse_config(to_yaml(config), config_path, layout_overrides(plan.ranked[best].layout));
  write_file_atomic(out_path, "# " + config_path + " with the layout `tessel tune` measured fastest on " +
                                  std::to_string(gpus) + " ranks (" + hw.name + ")\n" + to_yaml(tuned));
  out << "wrote " << out_path << "\n";
  // Steps this short are dominated by overheads the model leaves out: their ratios would skew
  // later plans.
  if (*std::min_element(measured.begin(), measured.end()) < kShortestPredictableStep) {
    out << "not recorded as calibration: steps under " << kShortestPredictableStep << " s are dominated by overheads "
        << "the cost model leaves out; tune a larger model or batch to calibrate " << hw.name << "\n";
    return 0;
  }
  const ModelShape shape = ModelShape::of(config);
  const Calibration c = record_calibration(calibration_file(hw.name), hw.name, shape, ratios);
  out << "recorded the ratios in " << c.path << " for " << shape.describe() << " (median " << c.ratio << " over "
      << c.runs << " runs): later plans on " << hw.name << " of models within 2x of its parameters and seq_len, in "
      << shape.precision << ", are scaled by it\n";
  if (c.replaced > 0) {
    out << "dropped " << c.replaced << " older ratios from the file: of its first format, which did not say which "
        << "model they measured, or of other hardware\n";
  }
  return 0;
}

}  // namespace tessel
