// Reading and writing the safetensors format (huggingface/safetensors; see REFERENCE.md): an
// 8-byte little-endian header length N, N bytes of JSON describing each tensor's dtype, shape
// and byte range, then the tensors' bytes back to back. Hugging Face checkpoints and Tessel's
// own weights and golden test data use it.
//
// SafetensorsFile maps a file read-only and validates the whole header when it opens, so every
// later lookup is cheap and cannot meet a corrupt entry; get() returns a copy (an owning CPU
// tensor, 64-byte aligned, independent of the file), raw() a pointer into the mapping that lives
// as long as the SafetensorsFile. A SafetensorsFile is immutable after construction and may be
// read from many threads.
//
// SafetensorsWriter collects tensor handles (no copy: the data is read when write() runs, so do
// not modify the tensors in between) and writes them ordered by name, with contiguous offsets
// from 0, the JSON padded with spaces to a multiple of 8 bytes so the data buffer starts
// 8-aligned, `__metadata__` first and always holding "format": "pt". The file appears
// atomically and durably (AtomicFileWriter). One thread at a time.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/io/file.h"
#include "core/tensor.h"

namespace tessel {

// safetensors refuses headers larger than this (a corrupt length would otherwise make a reader
// allocate gigabytes).
constexpr uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;

struct SafetensorsTensorInfo {
  std::string name;
  std::string dtype_name;      // as spelled in the file: "F32", "BF16", "F64", ...
  std::optional<DType> dtype;  // empty for safetensors dtypes Tessel has no DType for (F64, BOOL..)
  size_t element_size = 0;
  Shape shape;
  uint64_t begin = 0;  // byte range [begin, end) in the data buffer, after the header
  uint64_t end = 0;
};

class SafetensorsFile {
 public:
  // Maps and validates `path`; throws tessel::Error naming the file, the tensor and the problem.
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return file_.path(); }
  // Tensor names, sorted.
  std::vector<std::string> names() const;
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  // Throws, naming the file and a few of the names it does hold, when `name` is absent.
  const SafetensorsTensorInfo& info(const std::string& name) const;
  // A new CPU tensor holding a copy of the data; throws for dtypes Tessel cannot represent.
  Tensor get(const std::string& name) const;
  // The tensor's bytes inside the mapping (info(name).end - begin of them); not aligned.
  const uint8_t* raw(const std::string& name) const;
  // The `__metadata__` map (empty if the file has none).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  uint64_t header_bytes() const { return header_bytes_; }

 private:
  void parse_header();

  MappedFile file_;
  uint64_t header_bytes_ = 0;  // N
  std::map<std::string, SafetensorsTensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

class SafetensorsWriter {
 public:
  // `tensor` must be a defined, CPU tensor; names are unique and not "__metadata__".
  void add(const std::string& name, const Tensor& tensor);
  void set_metadata(const std::string& key, const std::string& value);
  // The JSON header as write() would emit it, padding included (for tests and tools).
  std::string header() const;
  // Writes the file atomically and durably.
  void write(const std::string& path) const;
  size_t size() const { return tensors_.size(); }

 private:
  std::map<std::string, Tensor> tensors_;  // ordered by name: that is the file order
  std::map<std::string, std::string> metadata_{{"format", "pt"}};
};

}  // namespace tessel
