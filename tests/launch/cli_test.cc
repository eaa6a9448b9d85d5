// The `tessel` command end to end, as a user runs it: prepare data, train from a YAML config,
// generate, evaluate, benchmark, and the exit status and message of common mistakes.
#include <sys/wait.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>

#include "core/io/file.h"
#include "core/io/json.h"
#include "core/io/temp_dir.h"
#include "train/stop_signal.h"

using namespace tessel;
namespace fs = std::filesystem;

namespace {

struct Result {
  int status = -1;
  std::string output;  // stdout and stderr together
};

Result run(const std::string& args) {
  const std::string cmd = std::string(TESSEL_BINARY) + " " + args + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  REQUIRE(pipe != nullptr);
  Result r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) r.output.append(buf, n);
  const int raw = ::pclose(pipe);
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return r;
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::string last_line(const std::string& text) {
  std::string t = text;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  const size_t nl = t.rfind('\n');
  return nl == std::string::npos ? t : t.substr(nl + 1);
}

}  // namespace

TEST_CASE("tessel: data prepare, train, generate, eval and bench work end to end", "[cpu][cli]") {
  TempDir dir("tessel_cli");
  const std::string& d = dir.path();
  std::string inputs;
  for (int i = 0; i < 6; ++i) {
    const std::string f = d + "/doc" + std::to_string(i) + ".txt";
    std::string text;
    for (int k = 0; k < 30; ++k) text += "line " + std::to_string(k) + " of document " + std::to_string(i) + ".\n";
    write_text(f, text);
    inputs += " " + f;
  }
  Result prep = run("data prepare --input" + inputs + " --tokenizer bytes --out " + d + "/ds --val-fraction 0.3");
  INFO(prep.output);
  REQUIRE(prep.status == 0);
  REQUIRE(fs::exists(d + "/ds_train.bin"));
  REQUIRE(fs::exists(d + "/ds_val.idx"));

  Result inspect = run("data inspect " + d + "/ds_train");
  INFO(inspect.output);
  CHECK(inspect.status == 0);
  CHECK_THAT(inspect.output, Catch::Contains("megatron"));

  const std::string cfg = d + "/tiny.yaml";
  write_text(cfg, "run: {out_dir: " + d +
                      "/run, steps: 4, log_every: 1, eval_every: 2, eval_batches: 1}\n"
                      "model: {arch: llama, vocab_size: 257, seq_len: 16, layers: 1, d_model: 32, heads: 4, kv_heads: "
                      "2, ffn_dim: 48}\n"
                      "batch: {global: 4, micro: 2}\n"
                      "optim: {lr: 1.0e-3, warmup_steps: 1}\n"
                      "data: {train: [" +
                      d + "/ds_train], val: " + d + "/ds_val}\n");
  Result train = run("train " + cfg + " --set run.steps=5 optim.lr=2e-3");
  INFO(train.output);
  REQUIRE(train.status == 0);
  CHECK_THAT(train.output, Catch::Contains("step     5/5"));
  CHECK_THAT(train.output, Catch::Contains("eval loss"));

  // metrics.jsonl: one object per step with the documented fields.
  std::istringstream metrics(read_file(d + "/run/metrics.jsonl"));
  std::string line;
  int lines = 0;
  while (std::getline(metrics, line)) {
    ++lines;
    const JsonValue v = parse_json(line, "metrics.jsonl");
    CHECK(v.find("step")->as_int() == lines);
    for (const char* key : {"loss", "lr", "grad_norm", "tokens_per_s"}) CHECK(v.find(key) != nullptr);
    CHECK((v.find("eval_loss") != nullptr) == (lines % 2 == 0 || lines == 5));
    if (lines == 1) CHECK(v.find("lr")->as_double() == Approx(2e-3));  // the --set override won
  }
  CHECK(lines == 5);
  bool events = false;
  for (const auto& e : fs::directory_iterator(d + "/run")) {
    events |= e.path().filename().string().rfind("events.out.tfevents.", 0) == 0;
  }
  CHECK(events);
  REQUIRE(fs::exists(d + "/run/checkpoints/step_00000005/manifest.pb"));

  Result gen1 = run("generate " + d + "/run/checkpoints --prompt 'line 3' --tokens 12 --seed 7");
  Result gen2 = run("generate " + d + "/run/checkpoints --prompt 'line 3' --tokens 12 --seed 7");
  INFO(gen1.output);
  REQUIRE(gen1.status == 0);
  CHECK(gen1.output == gen2.output);  // same seed, same text
  CHECK(last_line(gen1.output).rfind("line 3", 0) == 0);

  Result eval = run("eval " + d + "/run/checkpoints/step_00000005 --batches 2");
  INFO(eval.output);
  REQUIRE(eval.status == 0);
  const JsonValue ev = parse_json(last_line(eval.output), "eval");
  CHECK(ev.find("loss")->as_double() > 0);
  CHECK(ev.find("loss")->as_double() < 6.0);  // below uniform over 257 tokens (5.55) plus margin
  CHECK(ev.find("step")->as_int() == 5);

  Result bench = run("bench step " + cfg + " --steps 2 --warmup 1");
  INFO(bench.output);
  REQUIRE(bench.status == 0);
  const JsonValue b = parse_json(last_line(bench.output), "bench");
  for (const char* key : {"ms_per_step", "tokens_per_s", "tflops", "params", "loss"}) CHECK(b.find(key) != nullptr);
  CHECK(b.find("ms_per_step")->as_double() > 0);
}

TEST_CASE("tessel: mistakes give exit status 1 or 2 and a message that says what to do", "[cpu][cli][errors]") {
  TempDir dir("tessel_cli_err");
  Result unknown = run("frobnicate");
  CHECK(unknown.status == 2);
  CHECK_THAT(unknown.output, Catch::Contains("unknown command 'frobnicate'"));

  Result missing = run("train " + dir.path() + "/nope.yaml");
  CHECK(missing.status == 1);
  CHECK_THAT(missing.output, Catch::Contains("nope.yaml"));

  const std::string cfg = dir.path() + "/c.yaml";
  std::ofstream(cfg) << "model: {layers: 2}\ndata: {train: [x]}\n";
  Result typo = run("train " + cfg + " --set model.layres=3");
  CHECK(typo.status == 1);
  CHECK_THAT(typo.output, Catch::Contains("did you mean 'model.layers'"));

  Result no_ckpt = run("generate " + dir.path() + " --prompt hi");
  CHECK(no_ckpt.status == 1);
  CHECK_THAT(no_ckpt.output, Catch::Contains("no checkpoint"));

  Result bad_flag = run("generate " + dir.path() + " --promt hi");
  CHECK(bad_flag.status == 1);
  CHECK_THAT(bad_flag.output, Catch::Contains("unknown option '--promt'"));

  // A model no machine of this kind holds is refused before anything is allocated or read
  // (data.train names no dataset here).
  Result huge = run("train " + cfg + " --set model.layers=96 model.d_model=12288 model.heads=96");
  CHECK(huge.status == 1);
  CHECK_THAT(huge.output, Catch::Contains("by the planner's estimate one rank needs") && Catch::Contains("of memory") &&
                              Catch::Contains("model.d_model (12288)"));

  // Counts are range-checked before they become an int: 2^32 + 1 is not 1.
  Result ranks = run("launch --nproc-per-node 4294967297 " + cfg);
  CHECK(ranks.status == 1);
  CHECK_THAT(ranks.output, Catch::Contains("--nproc-per-node must be between 1 and 4096, got 4294967297"));
}

TEST_CASE("tessel: GPU settings on a machine without a GPU fail before anything is allocated, with a hint",
          "[cpu][cli][errors]") {
  TempDir dir("tessel_cli_gpu");
  const std::string cfg = dir.path() + "/c.yaml";
  std::ofstream(cfg) << "model: {layers: 2, d_model: 16, heads: 2, vocab_size: 64, seq_len: 8}\n"
                        "batch: {global: 2, micro: 2}\ndata: {train: [x]}\n";
  // This machine has no GPU: run.device=cuda names what is missing (the backend in a build
  // without CUDA, a visible device in one with it).
  for (const std::string command : {"train", "bench step"}) {
    INFO(command);
    Result cuda = run(command + " " + cfg + " --set run.device=cuda");
    CHECK(cuda.status == 1);
    CHECK_THAT(cuda.output, Catch::Contains("run.device=cuda but") &&
                                (Catch::Contains("no CUDA device is visible") ||
                                 Catch::Contains("this build has no CUDA backend")) &&
                                Catch::Contains("run.device=cpu"));
    Result bf16 = run(command + " " + cfg + " --set precision.compute=bf16");
    CHECK(bf16.status == 1);
    CHECK_THAT(bf16.output, Catch::Contains("precision.compute=bf16: the CPU backend computes in fp32"));
  }
  Result kernels = run("bench kernels " + cfg);
  CHECK(kernels.status == 1);
  CHECK_THAT(kernels.output,
             Catch::Contains("no CUDA device is visible") || Catch::Contains("this build has no CUDA backend"));
  Result dtype = run("bench kernels " + cfg + " --dtype fp8");
  CHECK(dtype.status == 1);
  CHECK_THAT(dtype.output, Catch::Contains("--dtype fp8 is not one of bf16, fp32"));
}

TEST_CASE("the first SIGTERM asks to stop instead of killing", "[cpu][launch]") {
  tessel::StopSignal stop;
  CHECK_FALSE(stop.requested());
  std::raise(SIGTERM);  // would end the test binary without the handler
  CHECK(stop.requested());
  CHECK(stop.signal_number() == SIGTERM);
  std::raise(SIGUSR1);  // later requests change nothing
  CHECK(stop.signal_number() == SIGTERM);
}
