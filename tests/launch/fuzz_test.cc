// Mutation fuzzing of every parser a user's file reaches: a damaged config, dataset, checkpoint
// or JSON line must give a tessel::Error, never a crash or another exception type.
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include <catch2/catch.hpp>

#include "core/checkpoint/reader.h"
#include "core/checkpoint/writer.h"
#include "core/config/config.h"
#include "core/io/file.h"
#include "core/io/json.h"
#include "core/io/safetensors.h"
#include "core/io/temp_dir.h"
#include "data/indexed_dataset.h"
#include "data/sampler.h"

using namespace tessel;

namespace {

// Flips, overwrites, inserts or truncates a few bytes, deterministically from `rng`.
std::string mutate(std::string s, std::mt19937& rng) {
  const int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits && !s.empty(); ++e) {
    const size_t at = rng() % s.size();
    switch (rng() % 5) {
      case 0: s[at] = static_cast<char>(s[at] ^ (1 << (rng() % 8))); break;
      case 1: s[at] = static_cast<char>(rng() % 256); break;
      case 2: s.insert(at, 1, "{}[]:,\"'-0\n #"[rng() % 13]); break;
      case 3: s.erase(at, 1 + rng() % 8); break;
      case 4: s.resize(at); break;
    }
  }
  return s;
}

void write(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

template <typename F>
void expect_error_or_success(F&& parse, const std::string& what, int iteration) {
  try {
    parse();
  } catch (const Error&) {
    // the expected outcome for most mutations
  } catch (const std::exception& e) {
    FAIL(what << " mutation " << iteration << " threw a non-tessel exception: " << e.what());
  }
}

}  // namespace

TEST_CASE("mutated configs give tessel errors", "[cpu][fuzz]") {
  const std::string base = read_file(std::string(TESSEL_SOURCE_DIR) + "/configs/demo.yaml");
  std::mt19937 rng(1);
  for (int i = 0; i < 400; ++i) {
    const std::string text = mutate(base, rng);
    expect_error_or_success([&] { parse_config(text, "fuzz.yaml"); }, "config", i);
  }
}

TEST_CASE("mutated JSON lines give tessel errors", "[cpu][fuzz]") {
  const std::string base = R"({"step":3,"loss":2.5,"lr":[1e-3,null],"name":"a\u00e9\n","ok":true})";
  std::mt19937 rng(2);
  for (int i = 0; i < 2000; ++i) {
    const std::string text = mutate(base, rng);
    expect_error_or_success([&] { parse_json(text, "fuzz.json"); }, "json", i);
  }
}

TEST_CASE("mutated Megatron datasets give tessel errors when opened and read", "[cpu][fuzz]") {
  TempDir dir("tessel_fuzz_idx");
  const std::string prefix = dir.path() + "/d";
  {
    IndexedDatasetWriter w(prefix, DType::U16);
    for (int d = 0; d < 5; ++d) w.add_document(std::vector<int32_t>(20 + d, 7 + d));
    w.finish();
  }
  const std::string idx = read_file(prefix + ".idx"), bin = read_file(prefix + ".bin");
  std::mt19937 rng(3);
  for (int i = 0; i < 400; ++i) {
    const bool damage_idx = i % 2 == 0;
    write(prefix + ".idx", damage_idx ? mutate(idx, rng) : idx);
    write(prefix + ".bin", damage_idx ? bin : mutate(bin, rng));
    expect_error_or_success(
        [&] {
          auto source = std::shared_ptr<const TokenSource>(open_token_source(prefix));
          Sampler sampler({source}, {1.0}, 8, 1, 64);
          std::vector<int32_t> out(9);
          for (uint64_t k = 0; k < 30; ++k) sampler.sample(k, out.data());
        },
        "dataset", i);
  }
}

TEST_CASE("mutated checkpoints give tessel errors when loaded", "[cpu][fuzz][checkpoint]") {
  TempDir dir("tessel_fuzz_ckpt");
  ParameterStore store({{"w", {3, 4}, 0, InitKind::kNormal, 1.0f, true}, {"b", {4}, -1, InitKind::kZeros, 0, false}});
  store.initialize(1);
  CheckpointData data;
  data.params = &store;
  data.state.step = 1;
  data.config_yaml = "run: {steps: 1}\n";
  const std::string step = save_checkpoint(dir.path(), data, 0);
  const std::string file = step + "/rank_00000.safetensors";
  const std::string good = read_file(file);
  std::mt19937 rng(4);
  int rejected = 0;
  for (int i = 0; i < 400; ++i) {
    write(file, mutate(good, rng));
    try {
      load_checkpoint(step, store, nullptr, nullptr);
    } catch (const Error&) {
      ++rejected;
    } catch (const std::exception& e) {
      FAIL("checkpoint mutation " << i << " threw a non-tessel exception: " << e.what());
    }
  }
  // Checksums, sizes and the header check catch nearly every damaged byte; what passes is in
  // the file's metadata text, which the manifest supersedes, so the weights read are intact.
  CHECK(rejected > 370);
  write(file, good);
  // The manifest is covered by its own checksum: every change to it is refused.
  const std::string manifest = step + "/manifest.pb", good_manifest = read_file(manifest);
  int changed = 0, refused = 0;
  for (int i = 0; i < 200; ++i) {
    const std::string bad = mutate(good_manifest, rng);
    if (bad == good_manifest) continue;
    ++changed;
    write(manifest, bad);
    try {
      load_checkpoint(step, store, nullptr, nullptr);
    } catch (const Error&) {
      ++refused;
    } catch (const std::exception& e) {
      FAIL("manifest mutation " << i << " threw a non-tessel exception: " << e.what());
    }
  }
  CHECK(refused == changed);
}
