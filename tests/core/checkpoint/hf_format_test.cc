// Hugging Face directories: export and import round trip, and directories crafted to read
// outside themselves or to run code.
#include "core/checkpoint/hf_format.h"

#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <string>

#include "core/error.h"
#include "core/io/file.h"
#include "core/io/json.h"
#include "core/io/temp_dir.h"
#include "core/model/param_specs.h"

namespace tessel {
namespace {
namespace fs = std::filesystem;

ModelConfig tiny_gpt2() {
  ModelConfig m;
  m.vocab_size = 16;
  m.seq_len = 8;
  m.layers = 1;
  m.d_model = 8;
  m.heads = 2;
  m.kv_heads = 2;
  m.ffn_dim = 16;
  return m;
}

// A tiny GPT-2 exported into `dir` in shards of at most 1 KiB (several files and an index).
ParameterStore export_tiny(const std::string& dir) {
  ParameterStore whole(transformer_param_specs(tiny_gpt2()));
  whole.initialize(5);
  export_hf(tiny_gpt2(), whole, dir, 1024);
  return whole;
}

std::string import_error(const std::string& dir) {
  ParameterStore whole(transformer_param_specs(tiny_gpt2()));
  try {
    read_hf_weights(dir, whole);
  } catch (const Error& e) {
    return e.message();
  }
  return "(imported)";
}

// The shard file the index names for `tensor`.
std::string shard_of(const std::string& dir, const std::string& tensor) {
  const std::string path = dir + "/model.safetensors.index.json";
  return parse_json(read_file(path), path).find("weight_map")->find(tensor)->as_string();
}

// Points the index's entry for `tensor` at `file`.
void craft_index(const std::string& dir, const std::string& tensor, const std::string& file) {
  const std::string path = dir + "/model.safetensors.index.json";
  const JsonValue index = parse_json(read_file(path), path);
  JsonValue::Object map = index.find("weight_map")->as_object();
  bool found = false;
  for (auto& [name, value] : map) {
    if (name != tensor) continue;
    value = JsonValue::string(file);
    found = true;
  }
  REQUIRE(found);
  write_file_atomic(path, JsonValue::object({{"weight_map", JsonValue::object(std::move(map))}}).dump());
}

TEST_CASE("a sharded Hugging Face export reads back bitwise", "[cpu][checkpoint][hf]") {
  TempDir dir("tessel_hf");
  const ParameterStore saved = export_tiny(dir.path());
  REQUIRE(path_exists(dir.file("model.safetensors.index.json")));
  ParameterStore read(transformer_param_specs(tiny_gpt2()));
  read_hf_weights(dir.path(), read);
  CHECK(std::memcmp(read.params().raw(), saved.params().raw(), saved.params().nbytes()) == 0);
  CHECK(read_hf_config(dir.path()).d_model == 8);
}

TEST_CASE("an index naming shard files outside its directory is refused, naming the key", "[cpu][checkpoint][hf]") {
  TempDir dir("tessel_hf_index");
  const std::string hf = dir.file("hf");
  export_tiny(hf);
  const std::string index = hf + "/model.safetensors.index.json";
  const std::string tensor = "transformer.wte.weight";
  // A valid shard, only not in the directory.
  write_file_atomic(dir.file("outside.safetensors"), read_file(hf + "/" + shard_of(hf, tensor)));
  craft_index(hf, tensor, "../outside.safetensors");
  CHECK_THAT(import_error(hf), Catch::StartsWith(index +
                                                 ", weight_map[\"transformer.wte.weight\"]: "
                                                 "\"../outside.safetensors\" has a '..' component, which "
                                                 "leads out of its directory; expected the plain name of a "
                                                 "file or directory inside " +
                                                 hf + "; hint: the name was edited or crafted"));
  craft_index(hf, tensor, dir.file("outside.safetensors"));
  CHECK_THAT(import_error(hf), Catch::Contains("\"" + dir.file("outside.safetensors") + "\" is an absolute path"));
  craft_index(hf, tensor, "sub/model.safetensors");
  CHECK_THAT(import_error(hf), Catch::Contains("\"sub/model.safetensors\" holds a path separator"));
  craft_index(hf, tensor, "");
  CHECK_THAT(import_error(hf), Catch::Contains("weight_map[\"transformer.wte.weight\"]: \"\" is empty"));
  // A shard that is a symlink leading out, or to itself.
  fs::create_symlink(dir.file("outside.safetensors"), hf + "/linked.safetensors");
  craft_index(hf, tensor, "linked.safetensors");
  CHECK_THAT(import_error(hf),
             Catch::Contains("\"linked.safetensors\" is a symlink that leads to " + dir.file("outside.safetensors")));
  fs::create_symlink("looped.safetensors", hf + "/looped.safetensors");
  craft_index(hf, tensor, "looped.safetensors");
  CHECK_THAT(import_error(hf), Catch::Contains("\"looped.safetensors\" is a symlink loop"));
}

TEST_CASE("an index or config.json claiming gigabytes is refused before it is read", "[cpu][checkpoint][hf]") {
  TempDir dir("tessel_hf_huge");
  export_tiny(dir.path());
  fs::resize_file(dir.file("model.safetensors.index.json"), uint64_t{50} << 30);  // sparse
  CHECK_THAT(import_error(dir.path()),
             Catch::StartsWith(dir.file("model.safetensors.index.json") + " is 53687091200 bytes; expected at most "
                                                                          "67108864 for this file"));
  fs::resize_file(dir.file("config.json"), uint64_t{50} << 30);
  CHECK_THROWS_WITH(read_hf_config(dir.path()), Catch::Contains("config.json is 53687091200 bytes"));
}

TEST_CASE("a single model.safetensors or config.json that loops is refused as a loop", "[cpu][checkpoint][hf]") {
  TempDir dir("tessel_hf_loop");
  ParameterStore whole(transformer_param_specs(tiny_gpt2()));
  whole.initialize(5);
  export_hf(tiny_gpt2(), whole, dir.path());
  fs::remove(dir.file("model.safetensors"));
  fs::create_symlink("model.safetensors", dir.file("model.safetensors"));
  CHECK_THAT(import_error(dir.path()),
             Catch::StartsWith(dir.path() + ": \"model.safetensors\" is a symlink loop: following its links never "
                                            "reaches a file"));
  fs::remove(dir.file("config.json"));
  fs::create_symlink("config.json", dir.file("config.json"));
  CHECK_THROWS_WITH(read_hf_config(dir.path()), Catch::Contains("\"config.json\" is a symlink loop"));
}

TEST_CASE("a directory of pickle weights only is refused: pickles are never loaded", "[cpu][checkpoint][hf]") {
  TempDir dir("tessel_hf_pickle");
  write_file_atomic(dir.file("config.json"), hf_config_json(tiny_gpt2()));
  // Not a real pickle: the refusal must come before anything reads it.
  write_file_atomic(dir.file("pytorch_model.bin"), "this would be a pickle that runs code");
  write_file_atomic(dir.file("training_args.bin"), "another pickle");
  CHECK_THAT(import_error(dir.path()),
             Catch::StartsWith("'" + dir.path() +
                               "' holds pickle weights (pytorch_model.bin, ...) and no safetensors: Tessel never "
                               "loads pickle files (.bin, .pt, .pth, .ckpt), because loading one can execute code "
                               "hidden in it; expected model.safetensors") &&
                 Catch::Contains("hint: convert the weights to safetensors"));
  fs::remove(dir.file("pytorch_model.bin"));
  fs::remove(dir.file("training_args.bin"));
  write_file_atomic(dir.file("consolidated.00.pth"), "pickle");
  CHECK_THAT(import_error(dir.path()), Catch::Contains("holds pickle weights (consolidated.00.pth)"));
  fs::remove(dir.file("consolidated.00.pth"));
  CHECK_THAT(import_error(dir.path()), Catch::Contains("no model.safetensors or model.safetensors.index.json"));
}

}  // namespace
}  // namespace tessel
