#include "data/dataset_identity.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <vector>

#include "core/error.h"
#include "core/io/crc32c.h"
#include "core/io/file.h"
#include "core/io/json.h"
#include "core/strings.h"

namespace tessel {
namespace fs = std::filesystem;
namespace {

constexpr uint64_t kEndBytes = uint64_t{64} << 10;
constexpr uint64_t kBlockBytes = uint64_t{4} << 10;
constexpr int kSampledBlocks = 16;

// crc32c over [offset, offset + length) of `in`, extended from crc.
uint32_t extend_with_range(uint32_t crc, std::ifstream& in, uint64_t offset, uint64_t length, const std::string& path) {
  std::vector<char> buffer(static_cast<size_t>(length));
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(buffer.data(), static_cast<std::streamsize>(length));
  TESSEL_CHECK(in.gcount() == static_cast<std::streamsize>(length))
      << "dataset file '" << path << "' could not be read at byte " << offset << " (" << length
      << " bytes); hint: the file changed while it was read, or is damaged";
  return crc32c_extend(crc, buffer.data(), buffer.size());
}

}  // namespace

std::string dataset_record_path(const std::string& dataset_path) {
  std::string prefix = dataset_path;
  static const std::regex shard(R"((.*)_[0-9]{6}\.bin)");
  std::smatch m;
  if (std::regex_match(dataset_path, m, shard)) {
    prefix = m[1];
  } else if (prefix.size() > 4 && (ends_with(prefix, ".bin") || ends_with(prefix, ".idx"))) {
    prefix.resize(prefix.size() - 4);
  }
  return prefix + ".tessel.json";
}

void write_dataset_record(const std::string& prefix, const DatasetRecord& record) {
  JsonLine line;
  line.add("tokenizer", record.tokenizer).add("vocab_size", record.vocab_size).add("written_by", record.written_by);
  write_file_atomic(prefix + ".tessel.json", line.str() + "\n");
}

std::optional<DatasetRecord> read_dataset_record(const TokenSource& source) {
  const std::string path = dataset_record_path(source.path());
  if (!path_exists(path)) return std::nullopt;
  const JsonValue json = parse_json(read_file(path), path);
  const JsonValue* tokenizer = json.is_object() ? json.find("tokenizer") : nullptr;
  TESSEL_CHECK(tokenizer != nullptr && tokenizer->is_string())
      << path << ": expected a JSON object with a \"tokenizer\" string (written by `tessel data prepare`); hint: "
      << "remove the file if the dataset was not prepared by Tessel, or prepare the data again";
  DatasetRecord record;
  record.tokenizer = tokenizer->as_string();
  if (const JsonValue* vocab = json.find("vocab_size"); vocab != nullptr && vocab->is_integer()) {
    record.vocab_size = vocab->as_int();
  }
  if (const JsonValue* by = json.find("written_by"); by != nullptr && by->is_string())
    record.written_by = by->as_string();
  return record;
}

DatasetFingerprint fingerprint_dataset(const std::string& role, const TokenSource& source) {
  DatasetFingerprint f;
  f.role = role;
  f.path = source.path();
  uint32_t crc = 0;
  for (const std::string& file : source.files()) {
    std::ifstream in(file, std::ios::binary);
    TESSEL_CHECK(in.is_open()) << "cannot open dataset file '" << file << "' to fingerprint it";
    const uint64_t size = fs::file_size(file);
    f.bytes += size;
    crc = crc32c_extend(crc, &size, sizeof(size));
    // The whole file when small, else its ends and evenly spread blocks between them.
    if (size <= 2 * kEndBytes + kSampledBlocks * kBlockBytes) {
      crc = extend_with_range(crc, in, 0, size, file);
      continue;
    }
    crc = extend_with_range(crc, in, 0, kEndBytes, file);
    const uint64_t middle = size - 2 * kEndBytes - kBlockBytes;
    for (int k = 1; k <= kSampledBlocks; ++k) {
      const uint64_t offset = kEndBytes + middle / (kSampledBlocks + 1) * static_cast<uint64_t>(k);
      crc = extend_with_range(crc, in, offset, kBlockBytes, file);
    }
    crc = extend_with_range(crc, in, size - kEndBytes, kEndBytes, file);
  }
  f.hash = crc32c_hex(crc);
  if (const std::optional<DatasetRecord> record = read_dataset_record(source)) f.tokenizer = record->tokenizer;
  return f;
}

}  // namespace tessel
