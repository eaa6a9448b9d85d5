// A Hugging Face config.json as `tessel ckpt import` reads it: the model it describes, turned
// into a validated Tessel config, and that model's parameter list (without allocating it).
#include "core/checkpoint/hf_format.h"
#include "core/config/config.h"
#include "core/error.h"
#include "core/model/param_specs.h"
#include "tests/fuzz/target.h"

namespace tessel::fuzz {

void fuzz_hf_config(std::string_view data) {
  scratch_file("config.json", data);
  try {
    Config config;
    config.model = read_hf_config(scratch_dir());
    config = parse_config(to_yaml(config), "config.json");
    transformer_param_specs(config.model);
  } catch (const Error&) {
  }
}

}  // namespace tessel::fuzz
