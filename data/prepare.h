// prepare_dataset: text and JSONL corpora → Megatron .bin/.idx token datasets (what
// `tessel data prepare` runs).
//
// Documents: each .txt input (any extension but .jsonl) is one document, or with split_lines
// each non-empty line is one (without its newline; a trailing '\r' is dropped). Each line of a
// .jsonl input is a JSON object whose "text" string is one document (blank lines are skipped).
// Empty documents are skipped and counted. Every document gets end-of-text appended.
//
// Train/val split (val_fraction > 0), by documents (the default): document n (0-based over all
// kept documents, in input order) goes to validation when hash_to_unit(hash_combine(seed, n)) <
// val_fraction. Adjustments so neither side is empty when there are >= 2 documents: if no
// document went to validation, the last one does; if none went to training, the last one does.
// A split that leaves validation empty (one document) or gives it more than 3x the asked
// fraction of the tokens (a few documents of very different sizes) is an error with hints, not
// a dataset: training would later fail on it or evaluate on a third of the data. By tokens
// (val_split_tokens): every document's last round(val_fraction x n) tokens form a validation
// document and the rest a training one, each with end-of-text where the format puts it: the
// split for one large file.
// Outputs PREFIX_train.{bin,idx} and, when val_fraction > 0, PREFIX_val.{bin,idx}, as u16, each
// with its PREFIX_*.tessel.json record (data/dataset_identity.h). Outputs of an earlier prepare
// into the same prefix that this one does not rewrite (a _val without --val-fraction, llm.c
// shards beyond the new last one, the other format's files) are removed once the new ones are
// complete, and listed in the summary: a stale _val would otherwise overlap the new _train.
//
// Streaming: inputs are read in chunks/lines; memory holds at most two documents (the current
// one and the last one, whose side is only final at the end). Outputs appear atomically when
// everything succeeded. Not thread-safe to run twice on the same prefix at once.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/config/values.h"

namespace tessel {

struct PrepareOptions {
  std::vector<std::string> inputs;
  TokenizerKind tokenizer = TokenizerKind::kBytes;
  std::string tokenizer_dir;        // gpt2's files; empty: .cache/gpt2
  std::string format = "megatron";  // megatron (PREFIX.bin/.idx) | llmc (PREFIX_NNNNNN.bin shards)
  int64_t shard_tokens = 10000000;
  int workers = 0;  // tokenizing threads; 0: all cores. Output is identical for any number.   // llmc: tokens per shard
                    // (llm.c uses 10^8 for FineWeb)
  std::string out_prefix;
  double val_fraction = 0;  // in [0, 1)
  bool split_lines = false;
  bool val_split_tokens = false;  // cut validation from the end of each document (see above)
  uint64_t seed = 1234;
};

struct PrepareProgress {
  std::string input;        // the file being read
  int64_t bytes_read = 0;   // over all inputs so far
  int64_t total_bytes = 0;  // sum of input sizes
  int64_t documents = 0;
  int64_t tokens = 0;
};

struct PrepareSummary {
  int64_t documents = 0;  // written: train + val
  int64_t train_documents = 0;
  int64_t val_documents = 0;
  int64_t skipped_documents = 0;  // empty files, lines or "text" values
  int64_t tokens = 0;             // written, end-of-text included
  int64_t train_tokens = 0;
  int64_t val_tokens = 0;
  int64_t bytes_read = 0;
  double seconds = 0;
  std::string train_prefix;
  std::string val_prefix;  // empty when val_fraction == 0
  std::vector<std::string> output_files;
  std::vector<std::string> removed_files;  // stale outputs of an earlier prepare into the prefix
};

using PrepareProgressFn = std::function<void(const PrepareProgress&)>;

// Throws tessel::Error for bad options (naming the option and what is valid), a missing input,
// malformed JSONL (file:line: byte), or an unknown/unavailable tokenizer.
PrepareSummary prepare_dataset(const PrepareOptions& options, const PrepareProgressFn& progress = {});

// The split rule for document `ordinal` before the end-of-run adjustments described above.
bool prepare_goes_to_val(uint64_t seed, int64_t ordinal, double val_fraction);

}  // namespace tessel
