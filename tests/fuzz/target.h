// The fuzz targets: one function per parser a user's input reaches, each fed arbitrary bytes.
//
// A target returns normally when the parser accepted the input or refused it with a
// tessel::Error; any other exception escapes (libFuzzer reports it as a crash, and the replay
// test in tests/launch/fuzz_replay_test.cc fails), as do the sanitizers' reports. Properties a
// target checks beyond "no crash" (a round trip, a bound) throw FuzzPropertyFailed.
//
// Built twice: into the libFuzzer executables of a clang build (`make fuzz`, scripts/fuzz.sh,
// tests/fuzz/fuzz_main.cc) and into the normal test build, where every committed seed and every
// input that once crashed (tests/fuzz/regressions/) is replayed in `make test`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tessel::fuzz {

struct FuzzPropertyFailed : std::logic_error {
  using std::logic_error::logic_error;
};

using TargetFn = void (*)(std::string_view data);

struct Target {
  const char* name;  // also the folder of its seeds, tests/fuzz/corpus/<name>
  TargetFn run;
};

void fuzz_config(std::string_view data);       // YAML config plus --set overrides
void fuzz_safetensors(std::string_view data);  // a .safetensors file: header and tensors
void fuzz_manifest(std::string_view data);     // a checkpoint's manifest.pb, opened by the reader
void fuzz_megatron(std::string_view data);     // a Megatron .idx (and a .bin of a given size)
void fuzz_llmc(std::string_view data);         // an llm.c token shard
void fuzz_json(std::string_view data);         // the JSON reader and the JSONL text-field reader
void fuzz_gpt2(std::string_view data);         // GPT-2 BPE: encode/decode of arbitrary bytes
void fuzz_hf_config(std::string_view data);    // a Hugging Face config.json, imported
void fuzz_cli(std::string_view data);          // the command line: flags, --set, --hosts, hostfile

// Every target, for the replay test and scripts/fuzz.sh's list.
const std::vector<Target>& all_targets();

// A directory private to this process for the targets that read files (removed at exit).
const std::string& scratch_dir();
// Writes `bytes` to scratch_dir()/name and returns the path.
std::string scratch_file(const std::string& name, std::string_view bytes);

}  // namespace tessel::fuzz
