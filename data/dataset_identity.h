// What a dataset is, so that a run notices when the data under a path changed.
//
// Record: `tessel data prepare` writes PREFIX.tessel.json beside each output (for llm.c shards,
// beside PREFIX_000000.bin...): the tokenizer and vocabulary it was tokenized with and the
// Tessel that wrote it. Training refuses data whose recorded tokenizer is not data.tokenizer;
// data prepared elsewhere (Megatron's tools, llm.c) records nothing and is taken as it is.
//
// Fingerprint: the bytes of the dataset's files and a crc32c of their sizes, their first and
// last 64 KiB and 16 blocks of 4 KiB spread between: cheap on terabytes (about 200 KiB read per
// file), and it changes when a file is rewritten with other content, cut or extended. Stored in
// every checkpoint manifest and compared on resume (train/checkpointer.h). Plain functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/checkpoint/format.h"
#include "data/token_source.h"

namespace tessel {

struct DatasetRecord {
  std::string tokenizer;  // "bytes" | "gpt2"
  int64_t vocab_size = 0;
  std::string written_by;  // core/version.h's line
};

// PREFIX.tessel.json for a dataset prefix (or shard file PREFIX_NNNNNN.bin).
std::string dataset_record_path(const std::string& dataset_path);
void write_dataset_record(const std::string& prefix, const DatasetRecord& record);
// The record beside `source`'s files, if there is one; a damaged record is an error naming it.
std::optional<DatasetRecord> read_dataset_record(const TokenSource& source);

// role: "train" or "val". The path is the source's, as configured.
DatasetFingerprint fingerprint_dataset(const std::string& role, const TokenSource& source);

}  // namespace tessel
