// Megatron-LM indexed datasets (PREFIX.idx + PREFIX.bin): Tessel's native token format.
//
// IndexedDataset memory-maps both files and validates them completely on open (magic, version,
// dtype code, file sizes, that sequence pointers are the running sum of lengths and that
// document indices run 0..S), so that a damaged dataset fails at startup with a message naming
// the file rather than mid-run. Because pointers must be contiguous, the token stream is the .bin
// itself. It is immutable after construction: const methods are thread-safe.
//
// IndexedDatasetWriter writes the same format, byte for byte as Megatron's
// IndexedDatasetBuilder (one sequence per document): tokens stream into PREFIX.bin.tmp as
// documents arrive (memory is bounded by a 1 MiB buffer, one document, and 4 bytes of length per
// document), and finish() writes the .idx and publishes both with core/io/file.h's
// AtomicFileWriter (fsync + rename, .bin first), so readers never see a half-written dataset. A writer is used by one
// thread; dropping it without finish() deletes the temporaries. Layout reference: REFERENCE.md "Megatron-LM indexed
// dataset".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/io/file.h"
#include "data/token_source.h"

namespace tessel {

// Megatron's dtype codes: 1 u8, 2 i8, 3 i16, 4 i32, 5 i64, 6 f64, 7 f32, 8 u16.
uint8_t megatron_dtype_code(DType dtype);
// Throws tessel::Error naming `where` for codes outside 1..8.
DType token_dtype_from_megatron_code(uint8_t code, const std::string& where);

class IndexedDataset : public TokenSource {
 public:
  static constexpr char kMagic[9] = {'M', 'M', 'I', 'D', 'I', 'D', 'X', '\0', '\0'};
  static constexpr uint64_t kVersion = 1;
  static constexpr int64_t kHeaderBytes = 34;  // magic 9 + version 8 + dtype 1 + S 8 + D 8

  // Opens PREFIX.idx and PREFIX.bin; throws tessel::Error naming the file on any inconsistency.
  explicit IndexedDataset(const std::string& prefix);

  int64_t num_tokens() const override { return num_tokens_; }
  void read(int64_t begin, int64_t count, int32_t* out) const override;
  const std::string& path() const override { return prefix_; }
  int64_t num_documents() const override { return num_documents_; }
  std::string format() const override { return "megatron"; }
  std::vector<std::string> files() const override { return {prefix_ + ".idx", prefix_ + ".bin"}; }
  DType dtype() const override { return dtype_; }

  int64_t num_sequences() const { return num_sequences_; }
  int32_t sequence_length(int64_t i) const;   // tokens in sequence i
  int64_t sequence_pointer(int64_t i) const;  // byte offset of sequence i in the .bin
  int64_t document_index(int64_t i) const;    // i in [0, num_documents()]: first sequence of doc i

 private:
  std::string prefix_;
  MappedFile idx_;
  MappedFile bin_;
  DType dtype_ = DType::U16;
  int64_t num_sequences_ = 0;  // S
  int64_t num_documents_ = 0;  // document_count - 1
  int64_t num_tokens_ = 0;
  const uint8_t* lengths_ = nullptr;   // int32[S], unaligned (starts at byte 34)
  const uint8_t* pointers_ = nullptr;  // int64[S]
  const uint8_t* doc_idx_ = nullptr;   // int64[documents + 1]
};

class IndexedDatasetWriter {
 public:
  static constexpr size_t kBufferBytes = size_t{1} << 20;

  // dtype: U8, U16, I32, I64 or F32 (Megatron codes 1, 8, 4, 5, 7). Opens PREFIX.bin.tmp.
  IndexedDatasetWriter(std::string prefix, DType dtype);
  ~IndexedDatasetWriter();  // without finish(): the temporaries are removed
  IndexedDatasetWriter(const IndexedDatasetWriter&) = delete;
  IndexedDatasetWriter& operator=(const IndexedDatasetWriter&) = delete;

  // Appends one document (one sequence). Throws tessel::Error when a token does not fit the
  // dtype (naming the document and token index).
  void add_document(const int32_t* tokens, int64_t n);
  void add_document(const std::vector<int32_t>& tokens) {
    add_document(tokens.data(), static_cast<int64_t>(tokens.size()));
  }
  // Flushes and fsyncs the .bin, writes the .idx, renames both into place. Call once.
  void finish();

  int64_t num_documents() const { return static_cast<int64_t>(lengths_.size()); }
  int64_t num_tokens() const { return num_tokens_; }
  const std::string& prefix() const { return prefix_; }

 private:
  void flush_buffer();

  std::string prefix_;
  DType dtype_;
  std::unique_ptr<AtomicFileWriter> bin_;  // PREFIX.bin.tmp while writing
  std::vector<int32_t> lengths_;
  int64_t num_tokens_ = 0;
  std::vector<uint8_t> buffer_;  // converted tokens not yet handed to bin_
  bool finished_ = false;
};

}  // namespace tessel
