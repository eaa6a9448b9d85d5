// Every config shipped in configs/ parses and validates, and has the shape it claims.
#include <filesystem>

#include <catch2/catch.hpp>

#include "core/config/config.h"
#include "core/model/param_specs.h"
#include "core/model/transformer.h"

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
  // GPT-2 counts as Hugging Face reports them (tied head counted once), plus the 47 rows of
  // padding that take the vocabulary from 50257 to 50304, a multiple of 128.
  auto gpt2 = [](int64_t hf_count, int64_t d_model) { return hf_count + (50304 - 50257) * d_model; };
  CHECK(parameter_count(load_config(config_path("gpt2-124m.yaml")).model) == gpt2(124439808, 768));
  CHECK(parameter_count(load_config(config_path("gpt2-350m.yaml")).model) == gpt2(354823168, 1024));
  CHECK(parameter_count(load_config(config_path("gpt2-1.5b.yaml")).model) == gpt2(1557611200, 1600));
  for (const char* name : {"gpt2-124m.yaml", "gpt2-350m.yaml", "gpt2-1.5b.yaml", "llama-1b.yaml", "demo.yaml"}) {
    INFO(name);
    CHECK(load_config(config_path(name)).model.vocab_size % 128 == 0);  // 16-byte aligned logits rows in bf16
  }
  const Config demo = load_config(config_path("demo.yaml"));
  CHECK(demo.data.tokenizer == TokenizerKind::kGpt2);
  CHECK(demo.model.vocab_size == 50304);  // GPT-2's 50257 padded to a multiple of 128
  CHECK(parameter_count(demo.model) < 16000000);
  const Config bytes = load_config(config_path("demo-bytes.yaml"));
  CHECK(bytes.data.tokenizer == TokenizerKind::kBytes);
  CHECK(bytes.model.vocab_size == 257);  // the byte tokenizer's vocabulary
  CHECK(parameter_count(bytes.model) < 5000000);
}
