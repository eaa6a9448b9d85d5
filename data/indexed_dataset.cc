// Megatron .bin/.idx reader and writer; see indexed_dataset.h.
#include "data/indexed_dataset.h"

#include <cstring>
#include <limits>
#include <utility>

#include "core/error.h"

namespace tessel {
namespace {

std::string printable_magic(const uint8_t* p) {
  std::string s;
  for (int i = 0; i < 9; ++i) {
    char c = static_cast<char>(p[i]);
    if (c >= 32 && c < 127) {
      s += c;
    } else {
      static const char* kHex = "0123456789abcdef";
      s += "\\x";
      s += kHex[p[i] >> 4];
      s += kHex[p[i] & 15];
    }
  }
  return s;
}

}  // namespace

uint8_t megatron_dtype_code(DType dtype) {
  switch (dtype) {
    case DType::U8: return 1;
    case DType::I8: return 2;
    case DType::I16: return 3;
    case DType::I32: return 4;
    case DType::I64: return 5;
    case DType::F64: return 6;
    case DType::F32: return 7;
    case DType::U16: return 8;
    case DType::U32:
    case DType::BF16:
    case DType::F16: break;
  }
  TESSEL_FAIL() << "token dtype " << dtype_short_name(dtype)
                << " has no Megatron dtype code (valid: u8, i8, i16, i32, i64, f64, f32, u16)";
}

DType token_dtype_from_megatron_code(uint8_t code, const std::string& where) {
  switch (code) {
    case 1: return DType::U8;
    case 2: return DType::I8;
    case 3: return DType::I16;
    case 4: return DType::I32;
    case 5: return DType::I64;
    case 6: return DType::F64;
    case 7: return DType::F32;
    case 8: return DType::U16;
    default: break;
  }
  TESSEL_FAIL() << "'" << where << "' byte 17: dtype code " << static_cast<int>(code)
                << " is not a Megatron dtype code (expected 1 u8, 2 i8, 3 i16, 4 i32, 5 i64, "
                << "6 f64, 7 f32 or 8 u16); hint: the file is damaged or from another tool";
}

constexpr char IndexedDataset::kMagic[9];

IndexedDataset::IndexedDataset(const std::string& prefix)
    : prefix_(prefix), idx_(prefix + ".idx"), bin_(prefix + ".bin") {
  const std::string& idx_path = idx_.path();
  const std::string& bin_path = bin_.path();
  const uint8_t* p = idx_.data();
  const int64_t idx_size = static_cast<int64_t>(idx_.size());
  TESSEL_CHECK(idx_size >= kHeaderBytes) << "Megatron index '" << idx_path << "' is truncated: " << idx_size
                                         << " bytes, expected at least " << kHeaderBytes
                                         << " (the header); hint: re-run "
                                         << "`tessel data prepare` or copy the file again";
  TESSEL_CHECK(std::memcmp(p, kMagic, 9) == 0) << "'" << idx_path << "' is not a Megatron index: it starts with '"
                                               << printable_magic(p) << "', expected 'MMIDIDX\\x00\\x00'";
  const uint64_t version = load_unaligned<uint64_t>(p + 9, 0);
  TESSEL_CHECK(version == kVersion) << "Megatron index '" << idx_path << "' byte 9: version " << version
                                    << ", expected " << kVersion;
  dtype_ = token_dtype_from_megatron_code(p[17], idx_path);
  const uint64_t seqs = load_unaligned<uint64_t>(p + 18, 0);
  const uint64_t doc_count = load_unaligned<uint64_t>(p + 26, 0);
  // Counts above 2^40 cannot be real and would overflow the size arithmetic below.
  constexpr uint64_t kMaxCount = uint64_t{1} << 40;
  TESSEL_CHECK(seqs < kMaxCount && doc_count < kMaxCount && doc_count >= 1)
      << "Megatron index '" << idx_path << "': implausible header (sequence_count " << seqs << ", document_count "
      << doc_count << "; document_count must be >= 1); hint: the file "
      << "is damaged";
  num_sequences_ = static_cast<int64_t>(seqs);
  num_documents_ = static_cast<int64_t>(doc_count) - 1;
  const int64_t expected = kHeaderBytes + num_sequences_ * 12 + static_cast<int64_t>(doc_count) * 8;
  TESSEL_CHECK(idx_size >= expected) << "Megatron index '" << idx_path << "' is truncated: " << idx_size
                                     << " bytes, expected " << expected << " for " << num_sequences_
                                     << " sequences and " << num_documents_
                                     << " documents; hint: re-run `tessel data prepare` or copy the file again";
  TESSEL_CHECK(idx_size == expected) << "Megatron index '" << idx_path << "' has " << idx_size << " bytes, expected "
                                     << expected << " for " << num_sequences_ << " sequences and " << num_documents_
                                     << " documents (" << idx_size - expected
                                     << " extra bytes at the end; multimodal indexes with sequence "
                                     << "modes are not supported)";
  lengths_ = p + kHeaderBytes;
  pointers_ = lengths_ + num_sequences_ * 4;
  doc_idx_ = pointers_ + num_sequences_ * 8;

  // The token stream is the .bin only when sequences are stored back to back, in order.
  const int64_t elem = static_cast<int64_t>(dtype_size(dtype_));
  int64_t tokens = 0;
  for (int64_t i = 0; i < num_sequences_; ++i) {
    const int32_t len = sequence_length(i);
    const int64_t ptr = sequence_pointer(i);
    TESSEL_CHECK(len >= 0) << "Megatron index '" << idx_path << "': sequence " << i << " has negative length " << len
                           << " (byte " << kHeaderBytes + i * 4 << "); hint: the file is damaged";
    TESSEL_CHECK(ptr == tokens * elem) << "Megatron index '" << idx_path << "': sequence " << i
                                       << " points to .bin byte " << ptr << ", expected " << tokens * elem
                                       << " (the running sum of the lengths before it, "
                                       << "times " << elem << " bytes); hint: the file is damaged or not contiguous";
    tokens += len;
  }
  num_tokens_ = tokens;
  int64_t prev = 0;
  for (int64_t i = 0; i <= num_documents_; ++i) {
    const int64_t d = document_index(i);
    TESSEL_CHECK((i == 0 ? d == 0 : d >= prev) && d <= num_sequences_)
        << "Megatron index '" << idx_path << "': document_indices[" << i << "] = " << d
        << " is invalid (they must start at 0, never decrease and stay <= sequence_count " << num_sequences_
        << "); hint: the file is damaged";
    prev = d;
  }
  TESSEL_CHECK(prev == num_sequences_) << "Megatron index '" << idx_path << "': the last document index is " << prev
                                       << ", expected sequence_count " << num_sequences_
                                       << "; hint: the file is damaged";
  const int64_t bin_size = static_cast<int64_t>(bin_.size());
  TESSEL_CHECK(bin_size == num_tokens_ * elem)
      << "Megatron data '" << bin_path << "' " << (bin_size < num_tokens_ * elem ? "is truncated: " : "has ")
      << bin_size << " bytes, expected " << num_tokens_ * elem << " (" << num_tokens_ << " tokens x " << elem
      << " bytes of " << dtype_short_name(dtype_) << ", as '" << idx_path
      << "' says); hint: the .bin and .idx come from different runs or the copy is incomplete";
}

void IndexedDataset::read(int64_t begin, int64_t count, int32_t* out) const {
  read_stored_tokens(bin_.path(), bin_.data(), dtype_, num_tokens_, begin, count, out);
}

int32_t IndexedDataset::sequence_length(int64_t i) const { return load_unaligned<int32_t>(lengths_, i); }
int64_t IndexedDataset::sequence_pointer(int64_t i) const { return load_unaligned<int64_t>(pointers_, i); }
int64_t IndexedDataset::document_index(int64_t i) const { return load_unaligned<int64_t>(doc_idx_, i); }

IndexedDatasetWriter::IndexedDatasetWriter(std::string prefix, DType dtype) : prefix_(std::move(prefix)) {
  TESSEL_CHECK(dtype == DType::U8 || dtype == DType::U16 || dtype == DType::I32 || dtype == DType::I64 ||
               dtype == DType::F32)
      << "cannot write a Megatron dataset with dtype " << dtype_name(dtype)
      << "; expected U8, U16, I32, I64 or F32 (U16 for vocabularies < 65536)";
  dtype_ = dtype;
  bin_ = std::make_unique<AtomicFileWriter>(prefix_ + ".bin");
  buffer_.reserve(kBufferBytes);
}

// The AtomicFileWriter members remove their temporaries when dropped uncommitted.
IndexedDatasetWriter::~IndexedDatasetWriter() = default;

void IndexedDatasetWriter::flush_buffer() {
  bin_->append(buffer_.data(), buffer_.size());
  buffer_.clear();
}

void IndexedDatasetWriter::add_document(const int32_t* tokens, int64_t n) {
  TESSEL_CHECK(!finished_) << "add_document after finish() on '" << prefix_ << "'";
  TESSEL_CHECK(n >= 0 && n <= std::numeric_limits<int32_t>::max())
      << "document " << lengths_.size() << " for '" << prefix_ << "' has " << n
      << " tokens; Megatron stores lengths as int32 (at most 2147483647)";
  int64_t lo = std::numeric_limits<int32_t>::min(), hi = std::numeric_limits<int32_t>::max();
  if (dtype_ == DType::U8) lo = 0, hi = 255;
  if (dtype_ == DType::U16) lo = 0, hi = 65535;
  // Validate the whole document first so that a rejected one leaves nothing behind.
  for (int64_t i = 0; i < n; ++i) {
    TESSEL_CHECK(tokens[i] >= lo && tokens[i] <= hi)
        << "document " << lengths_.size() << " for '" << prefix_ << "', token " << i << ": value " << tokens[i]
        << " does not fit " << dtype_short_name(dtype_) << " [" << lo << ", " << hi
        << "]; hint: use I32 for vocabularies of 65536 or more";
  }
  const size_t elem = dtype_size(dtype_);
  for (int64_t i = 0; i < n; ++i) {
    if (buffer_.size() + elem > kBufferBytes) flush_buffer();
    uint8_t bytes[8];
    const int32_t t = tokens[i];
    switch (dtype_) {
      case DType::U8: bytes[0] = static_cast<uint8_t>(t); break;
      case DType::U16: {
        const uint16_t v = static_cast<uint16_t>(t);
        std::memcpy(bytes, &v, 2);
        break;
      }
      case DType::I64: {
        const int64_t v = t;
        std::memcpy(bytes, &v, 8);
        break;
      }
      case DType::F32: {
        const float v = static_cast<float>(t);
        std::memcpy(bytes, &v, 4);
        break;
      }
      default: std::memcpy(bytes, &t, 4); break;
    }
    buffer_.insert(buffer_.end(), bytes, bytes + elem);
  }
  lengths_.push_back(static_cast<int32_t>(n));
  num_tokens_ += n;
}

void IndexedDatasetWriter::finish() {
  TESSEL_CHECK(!finished_) << "finish() called twice on '" << prefix_ << "'";
  finished_ = true;
  flush_buffer();

  AtomicFileWriter idx(prefix_ + ".idx");
  const uint64_t seqs = lengths_.size();
  const uint64_t doc_count = seqs + 1;
  const uint8_t code = megatron_dtype_code(dtype_);
  idx.append(IndexedDataset::kMagic, 9);
  idx.append(&IndexedDataset::kVersion, 8);
  idx.append(&code, 1);
  idx.append(&seqs, 8);
  idx.append(&doc_count, 8);
  idx.append(lengths_.data(), lengths_.size() * 4);
  const int64_t elem = static_cast<int64_t>(dtype_size(dtype_));
  std::vector<int64_t> column(lengths_.size());
  int64_t offset = 0;
  for (size_t i = 0; i < lengths_.size(); ++i) {
    column[i] = offset;
    offset += lengths_[i] * elem;
  }
  idx.append(column.data(), column.size() * 8);
  column.resize(doc_count);
  for (uint64_t i = 0; i < doc_count; ++i) column[i] = static_cast<int64_t>(i);
  idx.append(column.data(), column.size() * 8);
  // .bin first: a reader that finds the new .idx also finds the matching .bin.
  bin_->commit();
  idx.commit();
}

}  // namespace tessel
