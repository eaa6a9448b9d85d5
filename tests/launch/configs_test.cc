// Every config shipped in configs/ parses and validates, and has the shape it claims.
#include <filesystem>

#include <catch2/catch.hpp>

#include "core/config/config.h"
#include "core/model/transformer.h"
#include "core/model/param_specs.h"

using namespace tessel;

namespace {
int64_t parameter_count(const ModelConfig& m) {
  int64_t n = 0;
  for (const ParamSpec& s : transformer_param_specs(m)) n += shape_numel(s.shape);
  return n;
}
std::string config_path(const std::string& name) { return std::string(TESSEL_SOURCE_DIR) + "/configs/" + name; }
}  // namespace

TEST_CASE("every shipped config is valid", "[cpu][config]") {
  int count = 0;
  for (const auto& e : std::filesystem::directory_iterator(std::string(TESSEL_SOURCE_DIR) + "/configs")) {
    if (e.path().extension() != ".yaml") continue;
    INFO(e.path().string());
    CHECK_NOTHROW(load_config(e.path().string()));
    ++count;
  }
  CHECK(count >= 6);
}

TEST_CASE("shipped configs have the public models' parameter counts", "[cpu][config]") {
  // GPT-2 counts as Hugging Face reports them (tied head counted once).
  CHECK(parameter_count(load_config(config_path("gpt2-124m.yaml")).model) == 124439808);
  CHECK(parameter_count(load_config(config_path("gpt2-350m.yaml")).model) == 354823168);
  CHECK(parameter_count(load_config(config_path("gpt2-1.5b.yaml")).model) == 1557611200);
  const Config demo = load_config(config_path("demo.yaml"));
  CHECK(demo.data.tokenizer == TokenizerKind::kGpt2);
  CHECK(demo.model.vocab_size == 50304);  // GPT-2's 50257 padded to a multiple of 64
  CHECK(parameter_count(demo.model) < 16000000);
  const Config bytes = load_config(config_path("demo-bytes.yaml"));
  CHECK(bytes.data.tokenizer == TokenizerKind::kBytes);
  CHECK(bytes.model.vocab_size == 257);  // the byte tokenizer's vocabulary
  CHECK(parameter_count(bytes.model) < 5000000);
}
