#include "data/hf_tokenizer.h"

#include <filesystem>

#include "core/error.h"
#include "core/io/file.h"
#include "core/io/json.h"
#include "data/gpt2_tokenizer.h"
#include "data/tokenizer.h"

namespace tessel {
namespace fs = std::filesystem;
namespace {

constexpr int64_t kGpt2Vocab = 50257;
constexpr int64_t kVocabPadding = 128;  // vocabularies padded up to a multiple of at most this

// The GPT-2 pair in dir under either naming, as (vocabulary, merges); empty when absent. A
// model directory may come from anywhere: each name must stay inside it (contained_path refuses
// a symlink out of it or a loop).
std::pair<std::string, std::string> gpt2_files(const fs::path& dir) {
  const std::string where = dir.string() + " (tokenizer files)";
  for (const auto& [vocab, merges] : {std::pair{"encoder.json", "vocab.bpe"}, std::pair{"vocab.json", "merges.txt"}}) {
    const std::string v = contained_path(dir.string(), vocab, where), m = contained_path(dir.string(), merges, where);
    if (path_exists(v) && path_exists(m)) return {v, m};
  }
  return {};
}

}  // namespace

std::vector<std::string> export_hf_tokenizer(const std::string& tokenizer_dir, int64_t model_max_length,
                                             const std::string& out_dir) {
  const std::string dir = tokenizer_dir.empty() ? kDefaultGpt2TokenizerDir : tokenizer_dir;
  Gpt2Tokenizer::load(dir);  // a damaged or missing pair fails here, naming the file
  const auto [vocab, merges] = gpt2_files(dir);
  const fs::path out(out_dir);
  const std::string eot = "<|endoftext|>";
  write_file_atomic((out / "vocab.json").string(), read_file(vocab));
  write_file_atomic((out / "merges.txt").string(), read_file(merges));
  JsonLine config;
  config.add("tokenizer_class", "GPT2Tokenizer")
      .add("model_max_length", model_max_length)
      .add("bos_token", eot)
      .add("eos_token", eot)
      .add("unk_token", eot)
      .add("add_prefix_space", false)
      .add("clean_up_tokenization_spaces", false);
  write_file_atomic((out / "tokenizer_config.json").string(), config.str() + "\n");
  JsonLine special;
  special.add("bos_token", eot).add("eos_token", eot).add("unk_token", eot);
  write_file_atomic((out / "special_tokens_map.json").string(), special.str() + "\n");
  std::vector<std::string> files;
  for (const char* f : {"vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"}) {
    files.push_back((out / f).string());
  }
  return files;
}

HfTokenizerChoice import_hf_tokenizer(const std::string& hf_dir, int64_t vocab_size, const std::string& copy_to) {
  HfTokenizerChoice choice;
  const auto [vocab, merges] = gpt2_files(hf_dir);
  if (!vocab.empty()) {
    const std::shared_ptr<const Gpt2Tokenizer> t = Gpt2Tokenizer::load(hf_dir);
    TESSEL_CHECK(t->vocab_size() <= vocab_size)
        << hf_dir << ": its tokenizer has " << t->vocab_size() << " tokens but the model's vocabulary only "
        << vocab_size << " (config.json's vocab_size); hint: the tokenizer files belong to another model";
    fs::create_directories(copy_to);
    write_file_atomic((fs::path(copy_to) / "vocab.json").string(), read_file(vocab));
    write_file_atomic((fs::path(copy_to) / "merges.txt").string(), read_file(merges));
    choice.kind = TokenizerKind::kGpt2;
    choice.dir = copy_to;
    choice.found = true;
    choice.reason = "tokenizer: GPT-2 byte-level BPE from " + fs::path(vocab).filename().string() + " and " +
                    fs::path(merges).filename().string() + " (" + std::to_string(t->vocab_size()) +
                    " tokens), copied to " + copy_to;
    return choice;
  }
  if (vocab_size >= kGpt2Vocab && vocab_size < kGpt2Vocab + kVocabPadding) {
    choice.kind = TokenizerKind::kGpt2;
    choice.found = true;
    choice.reason = "tokenizer: GPT-2's (" + std::string(kDefaultGpt2TokenizerDir) + "), from the vocabulary of " +
                    std::to_string(vocab_size) + " ids; " + hf_dir +
                    " has no vocab.json + merges.txt (set data.tokenizer_dir to use others)";
    return choice;
  }
  if (vocab_size <= 256 + kVocabPadding) {
    choice.found = true;
    choice.reason = "tokenizer: bytes, from the vocabulary of " + std::to_string(vocab_size) + " ids";
    return choice;
  }
  const bool sentencepiece = fs::exists(fs::path(hf_dir) / "tokenizer.model");
  choice.reason =
      "WARNING: no tokenizer Tessel reads in " + hf_dir + " (" +
      (sentencepiece ? "tokenizer.model is SentencePiece, which Tessel does not read" : "no vocab.json + merges.txt") +
      ") for a vocabulary of " + std::to_string(vocab_size) +
      " ids: data.tokenizer stays bytes, so `tessel generate` prints byte-decoded ids; train on data "
      "tokenized elsewhere with the model's own tokenizer";
  return choice;
}

}  // namespace tessel
