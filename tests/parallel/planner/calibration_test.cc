// Calibration records: per model and hardware, used only for close models, the first file
// format read but never applied, malformed files refused with the file named.
#include <catch2/catch.hpp>

#include <fstream>

#include "core/io/file.h"
#include "core/io/temp_dir.h"
#include "parallel/planner/calibration.h"
#include "parallel/planner/cost_model.h"

using namespace tessel;

namespace {

Config tiny_gpt2() {
  return parse_config(
      "model: {arch: gpt2, vocab_size: 64, seq_len: 16, layers: 2, d_model: 32, heads: 4, kv_heads: 4, ffn_dim: 64}\n"
      "batch: {global: 8, micro: 2}\nprecision: {compute: fp32}\n",
      "tiny.yaml");
}

ModelShape llama_70b() {
  return ModelShape::of(load_config(std::string(TESSEL_SOURCE_DIR) + "/configs/llama-70b.yaml"));
}

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

}  // namespace

TEST_CASE("planner calibration: a model's shape key holds its exact parameter count", "[cpu][planner]") {
  const ModelShape s = ModelShape::of(tiny_gpt2());
  CHECK(s.parameters == 19712);  // counted by hand in cost_model_test.cc
  CHECK(s.describe() == "a 19.7K-parameter gpt2 (2 layers, d_model 32, seq_len 16, fp32)");
  const ModelShape big = llama_70b();
  CHECK(big.parameters == 68976648192);  // LLaMA-2 70B's published count
  CHECK(parameter_count(static_cast<double>(big.parameters)) == "69B");
  CHECK(parameter_count(1.2e6) == "1.2M");
  CHECK(parameter_count(124e6) == "124M");
  CHECK(parameter_count(999.7e3) == "1M");
  CHECK(parameter_count(512) == "512");
}

TEST_CASE("planner calibration applies within 2x of parameters and seq_len, in the same precision", "[cpu][planner]") {
  ModelShape measured = ModelShape::of(tiny_gpt2());
  ModelShape planned = measured;
  std::string why;
  CHECK(calibration_applies(measured, planned, &why));
  planned.parameters = 2 * measured.parameters;  // the bound itself is close
  CHECK(calibration_applies(measured, planned));
  planned.parameters = 2 * measured.parameters + 1;
  CHECK_FALSE(calibration_applies(measured, planned, &why));
  CHECK(why == "the planned model has 39.4K parameters, more than 2x the 19.7K measured");
  planned.parameters = measured.parameters / 2 - 1;
  CHECK_FALSE(calibration_applies(measured, planned, &why));
  CHECK(why == "the planned model has 9.86K parameters, under half the 19.7K measured");
  planned = measured;
  planned.seq_len = 64;
  CHECK_FALSE(calibration_applies(measured, planned, &why));
  CHECK(why == "the planned model's seq_len is 64, more than 2x the 16 measured");
  planned = measured;
  planned.precision = "bf16";
  CHECK_FALSE(calibration_applies(measured, planned, &why));
  CHECK(why == "the planned model computes in bf16, the measured one in fp32");
  CHECK_FALSE(calibration_applies(measured, llama_70b(), &why));
}

TEST_CASE(
    "planner calibration: tune records per model, and a plan uses the closest record that applies or says why not",
    "[cpu][planner]") {
  TempDir dir("calibration");
  const std::string path = dir.file("cpu-local.json");
  const ModelShape tiny = ModelShape::of(tiny_gpt2());

  Calibration none = read_calibration(path, "cpu-local", tiny);
  CHECK_FALSE(none.used);
  CHECK(none.ratio == 1.0);
  CHECK(none.note ==
        "no calibration: tessel tune has recorded none on cpu-local (" + path + "); times are the cost model's own");

  Calibration c = record_calibration(path, "cpu-local", tiny, {1.5, 2.5});
  c = record_calibration(path, "cpu-local", tiny, {2.0});  // the same model: the same record
  CHECK(c.used);
  CHECK(c.runs == 3);
  CHECK(c.ratio == 2.0);
  CHECK(c.replaced == 0);
  REQUIRE(read_calibration_records(path).size() == 1);

  // A model 1.5x larger is close: the tiny model's ratio applies to it, and the note says whose.
  ModelShape near = tiny;
  near.parameters = tiny.parameters * 3 / 2;
  near.layers = 3;
  c = read_calibration(path, "cpu-local", near);
  CHECK(c.used);
  CHECK(c.ratio == 2.0);
  CHECK(c.model == tiny);
  CHECK(c.note == "times scaled by 2, the median measured / predicted of 3 runs of tessel tune of " + tiny.describe() +
                      " on cpu-local (" + path + ")");
  // Recording the near model adds a record; each model then uses its own.
  record_calibration(path, "cpu-local", near, {1.2});
  REQUIRE(read_calibration_records(path).size() == 2);
  CHECK(read_calibration(path, "cpu-local", near).ratio == 1.2);
  CHECK(read_calibration(path, "cpu-local", tiny).ratio == 2.0);

  // A 70B model: no record applies; the closest one is named, with what differs and a hint.
  c = read_calibration(path, "cpu-local", llama_70b());
  CHECK_FALSE(c.used);
  CHECK(c.ratio == 1.0);
  CHECK(c.note == "calibration from tessel tune of " + near.describe() +
                      " on cpu-local not used: the planned model has 69B parameters, more than 2x the 29.6K measured "
                      "(a ratio carries over only within 2x in parameters and seq_len, in the same precision); "
                      "times are the cost model's own; hint: run tessel tune on a model close to this one (" +
                      llama_70b().describe() + ") on cpu-local to calibrate it (records in " + path + ")");

  // Records of other hardware (a file copied under another name) do not apply.
  c = read_calibration(path, "h100-sxm", tiny);
  CHECK_FALSE(c.used);
  CHECK_THAT(c.note, Catch::Contains("recorded for other hardware than h100-sxm"));
}

TEST_CASE("planner calibration: a file of the first format is read, never applied, and replaced by the next record",
          "[cpu][planner]") {
  TempDir dir("calibration");
  const std::string path = dir.file("cpu-local.json");
  const ModelShape tiny = ModelShape::of(tiny_gpt2());
  write(path, R"({"hardware": "cpu-local", "ratios": [1.5, 2.5, 2.0]})");
  const std::vector<CalibrationRecord> old = read_calibration_records(path);
  REQUIRE(old.size() == 1);
  CHECK_FALSE(old[0].has_model);
  CHECK(old[0].ratios == std::vector<double>{1.5, 2.5, 2.0});
  Calibration c = read_calibration(path, "cpu-local", tiny);
  CHECK_FALSE(c.used);
  CHECK(c.ratio == 1.0);
  CHECK_THAT(c.note, Catch::StartsWith("calibration in " + path + " not used: it is of the first format"));
  c = record_calibration(path, "cpu-local", tiny, {1.1});
  CHECK(c.replaced == 3);
  CHECK(c.used);
  CHECK(c.ratio == 1.1);
  CHECK_THAT(read_file(path), Catch::StartsWith(R"({"format":2,"hardware":"cpu-local","models":[{"model":)"));
}

TEST_CASE("planner calibration: malformed files are refused, naming the file and a way out", "[cpu][planner][errors]") {
  TempDir dir("calibration");
  const std::string path = dir.file("cpu-local.json");
  write(path, R"({"hardware": "cpu-local"})");
  CHECK_THROWS_WITH(read_calibration_records(path),
                    Catch::Contains(path + ": no 'ratios' list") && Catch::Contains("hint: delete the file"));
  write(path, R"({"format": 3, "hardware": "cpu-local", "models": []})");
  CHECK_THROWS_WITH(read_calibration_records(path),
                    Catch::Contains(path + ": calibration format 3, expected 2") && Catch::Contains("hint:"));
  write(path, R"({"format": 2, "hardware": "cpu-local", "models": [{"model": {"arch": "gpt2"}, "ratios": [1]}]})");
  CHECK_THROWS_WITH(read_calibration_records(path), Catch::Contains(path + ": a record's model has no 'layers'"));
  write(path, R"({"format": 2, "hardware": "cpu-local", "models": [{"model": )" +
                  ModelShape::of(tiny_gpt2()).to_json().dump() + R"(, "ratios": [-1]}]})");
  CHECK_THROWS_WITH(read_calibration_records(path),
                    Catch::Contains(path + ": a ratio of -1, expected a positive measured / predicted"));
}
