// DatasetWriter: where `data prepare` puts tokenized documents, in either output format.
//
//  megatron  PREFIX.bin + PREFIX.idx (Tessel's native format; documents kept as documents)
//  llmc      PREFIX_000000.bin, PREFIX_000001.bin, ... llm.c shards (GPT-2 magic 20240520,
//            version 1, u16 tokens) of at most `shard_tokens` tokens each; a document that does
//            not fit in a shard continues in the next, as llm.c's own preparation does.
// The end-of-text placement differs by convention: Megatron data ends each document with it,
// llm.c data begins each document with it; end_of_text_first() says which. Files appear
// atomically when complete. Not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tessel {

class DatasetWriter {
 public:
  virtual ~DatasetWriter() = default;
  virtual void add_document(const std::vector<int32_t>& tokens) = 0;
  // Writes what is pending; returns every file written.
  virtual std::vector<std::string> finish() = 0;
  virtual bool end_of_text_first() const = 0;
};

// format: "megatron" | "llmc". Tokens must fit in u16 (vocabularies up to 65536).
std::unique_ptr<DatasetWriter> make_dataset_writer(const std::string& format, const std::string& prefix,
                                                   int64_t shard_tokens);

}  // namespace tessel
