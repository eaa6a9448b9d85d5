// The tokenizer of a Hugging Face directory, both ways (docs/checkpoints.md).
//
// GPT-2's byte-level BPE is two files under either name: OpenAI's encoder.json and vocab.bpe
// (what Tessel's data.tokenizer_dir holds) are byte for byte Hugging Face's vocab.json and
// merges.txt. Export copies them under the Hugging Face names and adds tokenizer_config.json and
// special_tokens_map.json, which is what transformers' GPT2Tokenizer(Fast).from_pretrained
// reads. Import takes the tokenizer from the files present (copied beside the imported
// checkpoint, so it does not depend on the source directory staying), else from the
// vocabulary size (GPT-2's 50,257, padded or not, means GPT-2's tokenizer), else it says that
// no tokenizer Tessel reads was found. Plain file I/O.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/config/values.h"

namespace tessel {

// Writes vocab.json, merges.txt, tokenizer_config.json and special_tokens_map.json for the GPT-2
// tokenizer in tokenizer_dir (empty: the default, data/tokenizer.h) into out_dir; returns the
// files written. The files are loaded first, so damaged ones are an error, not an export.
std::vector<std::string> export_hf_tokenizer(const std::string& tokenizer_dir, int64_t model_max_length,
                                             const std::string& out_dir);

struct HfTokenizerChoice {
  TokenizerKind kind = TokenizerKind::kBytes;
  std::string dir;     // data.tokenizer_dir to set ("" for the default)
  std::string reason;  // one sentence for the user: what was found and what was taken
  bool found = false;  // false: nothing Tessel reads; `reason` says what to do
};

// The tokenizer of Hugging Face directory hf_dir for a model of vocab_size ids; tokenizer files
// found there are copied into copy_to (created).
HfTokenizerChoice import_hf_tokenizer(const std::string& hf_dir, int64_t vocab_size, const std::string& copy_to);

}  // namespace tessel
