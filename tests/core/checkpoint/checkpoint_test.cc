// Single-process checkpoints: round trip, rotation, verification.
#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

#include "core/checkpoint/directory.h"
#include "core/checkpoint/reader.h"
#include "core/checkpoint/writer.h"
#include "core/io/temp_dir.h"

using namespace tessel;
namespace fs = std::filesystem;

namespace {

ParameterStore small_store(uint64_t seed) {
  ParameterStore s(
      {{"a.weight", {4, 3}, 0, InitKind::kNormal, 1.0f, true}, {"b.bias", {5}, -1, InitKind::kNormal, 1.0f, false}});
  s.initialize(seed);
  return s;
}

std::string save_step(const std::string& root, const ParameterStore& s, int64_t step, int64_t keep,
                      const Tensor* m = nullptr) {
  CheckpointData d;
  d.params = &s;
  d.adam_m = m;
  d.adam_v = m;
  d.state.step = step;
  d.state.consumed_samples = static_cast<uint64_t>(step * 8);
  d.config_yaml = "run: {steps: 10}\n";
  return save_checkpoint(root, d, keep);
}

// Flips one byte `from_end` bytes before the end of the file.
void damage(const std::string& file, int64_t from_end) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(-from_end, std::ios::end);
  char c = 0;
  f.read(&c, 1);
  f.seekp(-from_end, std::ios::end);
  c = static_cast<char>(c ^ 0x5a);
  f.write(&c, 1);
}

}  // namespace

TEST_CASE("a checkpoint round-trips weights, moments and the training state", "[cpu][checkpoint]") {
  TempDir dir("tessel_ckpt");
  ParameterStore s = small_store(1);
  Tensor m = Tensor::zeros({s.numel()}, DType::F32);
  m.data<float>()[3] = 0.25f;
  const std::string path = save_step(dir.path(), s, 7, 3, &m);
  CHECK(fs::path(path).filename() == "step_00000007");
  CHECK(latest_checkpoint(dir.path()) == path);

  ParameterStore t = small_store(2);
  Tensor m2 = Tensor::zeros({t.numel()}, DType::F32), v2 = Tensor::zeros({t.numel()}, DType::F32);
  const CheckpointMeta info = load_checkpoint(path, t, &m2, &v2);
  CHECK(info.state.step == 7);
  CHECK(info.state.consumed_samples == 56);
  CHECK(info.config_yaml == "run: {steps: 10}\n");
  CHECK(std::memcmp(t.params().raw(), s.params().raw(), s.params().nbytes()) == 0);
  CHECK(m2.data<float>()[3] == 0.25f);
  CHECK(v2.data<float>()[3] == 0.25f);
}

TEST_CASE("keep rotates by step number and never deletes the checkpoint just written", "[cpu][checkpoint]") {
  TempDir dir("tessel_rotate");
  ParameterStore s = small_store(1);
  for (int64_t step : {100000000, 200000000}) save_step(dir.path(), s, step, 0);  // another run's, names past 10^8
  save_step(dir.path(), s, 99999999, 0);
  // A new run in the same directory writes step 4, then step 8, keeping 2.
  save_step(dir.path(), s, 4, 2);
  const std::string eight = save_step(dir.path(), s, 8, 2);
  CHECK(fs::exists(eight));
  CHECK(latest_checkpoint(dir.path()) == eight);
  const std::vector<std::string> left = complete_checkpoints(dir.path());
  REQUIRE(left.size() == 2);
  CHECK(fs::path(left[0]).filename() == "step_00000008");  // ordered by step number
  CHECK(fs::path(left[1]).filename() == "step_200000000");
}

TEST_CASE("a damaged tensor fails verification naming the file and the tensor", "[cpu][checkpoint][errors]") {
  TempDir dir("tessel_damage");
  ParameterStore s = small_store(1);
  const std::string path = save_step(dir.path(), s, 3, 0);
  damage(path + "/rank_00000.safetensors", 2);  // a byte of the last piece's data
  ParameterStore t = small_store(2);
  try {
    load_checkpoint(path, t, nullptr, nullptr);
    FAIL("expected a verification error");
  } catch (const Error& e) {
    CHECK_THAT(e.message(), Catch::Contains("is damaged: file rank_00000.safetensors, tensor"));
    CHECK_THAT(e.message(), Catch::Contains("crc32c"));
    CHECK_THAT(e.message(), Catch::Contains(".weight'") || Catch::Contains(".bias'"));
  }
}

TEST_CASE("a checkpoint root without checkpoints is a clear error", "[cpu][checkpoint][errors]") {
  TempDir dir("tessel_none");
  CHECK(latest_checkpoint(dir.path()).empty());
  CHECK_THROWS_WITH(resolve_checkpoint(dir.path()), Catch::Contains("no checkpoint at"));
}

TEST_CASE("a truncated, missing or edited checkpoint file is named in the error", "[cpu][checkpoint][errors]") {
  TempDir dir("tessel_broken");
  ParameterStore s = small_store(1);
  ParameterStore t = small_store(2);
  auto error_of = [&](const std::string& path) {
    try {
      load_checkpoint(path, t, nullptr, nullptr);
    } catch (const Error& e) {
      return e.message();
    }
    return std::string("(no error)");
  };
  const std::string truncated = save_step(dir.path(), s, 1, 0);
  fs::resize_file(truncated + "/rank_00000.safetensors", fs::file_size(truncated + "/rank_00000.safetensors") - 10);
  CHECK_THAT(error_of(truncated),
             Catch::Contains("file rank_00000.safetensors has") && Catch::Contains("(truncated or overwritten)"));
  const std::string missing = save_step(dir.path(), s, 2, 0);
  fs::remove(missing + "/rank_00000.safetensors");
  CHECK_THAT(error_of(missing), Catch::Contains("file rank_00000.safetensors that its manifest lists is missing"));
  const std::string edited = save_step(dir.path(), s, 3, 0);
  damage(edited + "/manifest.pb", 20);
  CHECK_THAT(error_of(edited), Catch::Contains("manifest.pb is damaged or was edited"));
  const std::string unfinished = save_step(dir.path(), s, 4, 0);
  fs::remove(unfinished + "/manifest.pb");
  CHECK_THAT(error_of(unfinished), Catch::Contains("has no manifest.pb: it is not a complete checkpoint"));
  CHECK(complete_checkpoints(dir.path()).size() == 3);  // the one without a manifest is not listed
  CHECK(error_of(save_step(dir.path(), s, 5, 0)) == "(no error)");
}

TEST_CASE("a checkpoint of another model shape names the tensor and both shapes", "[cpu][checkpoint][errors]") {
  TempDir dir("tessel_shape");
  ParameterStore s = small_store(1);
  const std::string path = save_step(dir.path(), s, 1, 0);
  ParameterStore wider(
      {{"a.weight", {4, 5}, 0, InitKind::kNormal, 1.0f, true}, {"b.bias", {5}, -1, InitKind::kNormal, 1.0f, false}});
  CHECK_THROWS_WITH(load_checkpoint(path, wider, nullptr, nullptr),
                    Catch::Contains("tensor 'a.weight' is F32[4, 3] but this model expects F32[4, 5]"));
  const CheckpointReader reader(path);
  CHECK_THROWS_WITH(reader.check_model({s.entries()[0].spec}),
                    Catch::Contains("holds tensor 'b.bias' that this model does not have"));
  CHECK_NOTHROW(reader.check_model({s.entries()[0].spec, s.entries()[1].spec}));
}
