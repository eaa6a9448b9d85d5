#include "core/io/safetensors.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/io/json.h"

namespace tessel {
namespace {

struct SafetensorsDType {
  const char* name;
  size_t size;
  std::optional<DType> dtype;
};

// Every dtype the format defines, whether or not Tessel can compute in it: a file holding an
// F64 tensor is still a valid file, and its other tensors must load.
constexpr SafetensorsDType kDTypes[] = {
    {"BOOL", 1, std::nullopt},    {"U8", 1, DType::U8},     {"I8", 1, std::nullopt},  {"F8_E5M2", 1, std::nullopt},
    {"F8_E4M3", 1, std::nullopt}, {"I16", 2, std::nullopt}, {"U16", 2, DType::U16},   {"F16", 2, DType::F16},
    {"BF16", 2, DType::BF16},     {"I32", 4, DType::I32},   {"U32", 4, std::nullopt}, {"F32", 4, DType::F32},
    {"F64", 8, std::nullopt},     {"I64", 8, DType::I64},   {"U64", 8, std::nullopt},
};

const SafetensorsDType* find_dtype(const std::string& name) {
  for (const auto& d : kDTypes)
    if (name == d.name) return &d;
  return nullptr;
}

std::string known_dtype_list() {
  std::string s;
  for (const auto& d : kDTypes) s += (s.empty() ? "" : " ") + std::string(d.name);
  return s;
}

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

constexpr const char* kCorruptHint = " (hint: the file is truncated or corrupt; re-download or re-export it)";

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(path) { parse_header(); }

void SafetensorsFile::parse_header() {
  const std::string& path = file_.path();
  const uint64_t file_size = file_.size();
  TESSEL_CHECK(file_size >= 8) << path << ": " << file_size
                               << " bytes is too small for a safetensors file, which starts "
                                  "with an 8-byte header length"
                               << kCorruptHint;
  header_bytes_ = read_u64_le(file_.data());
  TESSEL_CHECK(header_bytes_ <= kSafetensorsMaxHeaderBytes)
      << path << ": header length " << header_bytes_ << " exceeds the safetensors limit of "
      << kSafetensorsMaxHeaderBytes << " bytes"
      << " (hint: is this a safetensors file?)";
  TESSEL_CHECK(header_bytes_ <= file_size - 8)
      << path << ": header length " << header_bytes_ << " runs past the end of the " << file_size << "-byte file"
      << kCorruptHint;
  const char* header_begin = reinterpret_cast<const char*>(file_.data()) + 8;
  TESSEL_CHECK(header_bytes_ > 0 && header_begin[0] == '{') << path << ": header does not start with '{'"
                                                            << " (hint: is this a safetensors file?)";
  const std::string header(header_begin, header_bytes_);
  const JsonValue root = parse_json(header, path + " (safetensors header)");
  TESSEL_CHECK(root.is_object()) << path << ": header is " << json_kind_name(root.kind()) << ", expected an object";

  for (const auto& [name, value] : root.as_object()) {
    if (name == "__metadata__") {
      TESSEL_CHECK(value.is_object()) << path << ": __metadata__ is " << json_kind_name(value.kind())
                                      << ", expected an object";
      for (const auto& [key, v] : value.as_object()) {
        TESSEL_CHECK(v.is_string()) << path << ": __metadata__[\"" << key << "\"] is " << json_kind_name(v.kind())
                                    << ", expected a string (safetensors metadata is string to "
                                       "string)";
        metadata_[key] = v.as_string();
      }
      continue;
    }
    const std::string where = path + ": tensor \"" + name + "\"";
    TESSEL_CHECK(value.is_object()) << where << " is described by " << json_kind_name(value.kind())
                                    << ", expected an object";
    const JsonValue* dtype = value.find("dtype");
    const JsonValue* shape = value.find("shape");
    const JsonValue* offsets = value.find("data_offsets");
    TESSEL_CHECK(dtype && shape && offsets) << where << " lacks one of \"dtype\", \"shape\", \"data_offsets\"";
    TESSEL_CHECK(dtype->is_string()) << where << ": dtype is " << json_kind_name(dtype->kind())
                                     << ", expected a string";
    const SafetensorsDType* known = find_dtype(dtype->as_string());
    TESSEL_CHECK(known != nullptr) << where << ": unknown dtype \"" << dtype->as_string() << "\", expected one of "
                                   << known_dtype_list();

    SafetensorsTensorInfo info;
    info.name = name;
    info.dtype_name = known->name;
    info.dtype = known->dtype;
    info.element_size = known->size;
    TESSEL_CHECK(shape->is_array()) << where << ": shape is " << json_kind_name(shape->kind())
                                    << ", expected an array of integers";
    // numel * size must not overflow; the byte count is bounded by the file size, so any
    // product beyond it is an error anyway.
    unsigned __int128 bytes = known->size;
    for (const JsonValue& d : shape->as_array()) {
      TESSEL_CHECK(d.is_integer() && d.as_int() >= 0)
          << where << ": shape entry " << d.dump() << " is not a non-negative integer";
      info.shape.push_back(d.as_int());
      bytes *= static_cast<uint64_t>(d.as_int());
      if (bytes > file_size) bytes = static_cast<unsigned __int128>(file_size) + 1;
    }
    TESSEL_CHECK(offsets->is_array() && offsets->as_array().size() == 2 && offsets->as_array()[0].is_integer() &&
                 offsets->as_array()[1].is_integer() && offsets->as_array()[0].as_int() >= 0 &&
                 offsets->as_array()[0].as_int() <= offsets->as_array()[1].as_int())
        << where << ": data_offsets " << offsets->dump() << " is not [begin, end] with 0 <= begin <= end";
    info.begin = static_cast<uint64_t>(offsets->as_array()[0].as_int());
    info.end = static_cast<uint64_t>(offsets->as_array()[1].as_int());
    TESSEL_CHECK(bytes == info.end - info.begin)
        << where << ": data_offsets [" << info.begin << ", " << info.end << "] hold " << info.end - info.begin
        << " bytes, but " << info.dtype_name << shape_str(info.shape) << " needs " << static_cast<uint64_t>(bytes)
        << kCorruptHint;
    tensors_.emplace(name, std::move(info));
  }

  // The pieces, in offset order, must tile the data buffer exactly: no holes, no overlaps.
  std::vector<const SafetensorsTensorInfo*> by_offset;
  for (const auto& entry : tensors_) by_offset.push_back(&entry.second);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const auto* a, const auto* b) { return a->begin != b->begin ? a->begin < b->begin : a->end < b->end; });
  uint64_t expected = 0;
  const SafetensorsTensorInfo* previous = nullptr;
  for (const auto* t : by_offset) {
    if (t->begin != expected) {
      if (previous == nullptr)
        TESSEL_FAIL() << path << ": tensor \"" << t->name << "\" starts at data offset " << t->begin
                      << ", expected the first tensor to start at 0" << kCorruptHint;
      TESSEL_FAIL() << path << ": tensor \"" << t->name << "\" starts at data offset " << t->begin
                    << ", but the previous tensor \"" << previous->name << "\" ends at " << expected << " ("
                    << (t->begin > expected ? "a hole" : "an overlap") << "; safetensors requires contiguous data)"
                    << kCorruptHint;
    }
    expected = t->end;
    previous = t;
  }
  const uint64_t want_size = 8 + header_bytes_ + expected;
  TESSEL_CHECK(file_size == want_size) << path << ": file is " << file_size << " bytes, expected " << want_size
                                       << " (8 + header " << header_bytes_ << " + data " << expected << ")"
                                       << (previous ? " ending with tensor \"" + previous->name + "\"" : std::string())
                                       << kCorruptHint;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& entry : tensors_) out.push_back(entry.first);
  return out;
}

const SafetensorsTensorInfo& SafetensorsFile::info(const std::string& name) const {
  const auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    std::string some;
    int n = 0;
    for (const auto& entry : tensors_) {
      if (n++ == 5) {
        some += ", ...";
        break;
      }
      some += (some.empty() ? "" : ", ") + entry.first;
    }
    TESSEL_FAIL() << path() << ": no tensor named \"" << name << "\"; the file holds " << tensors_.size()
                  << " tensors (" << some << ") (hint: check the name's prefix, e.g. \"transformer.\" or \"model.\")";
  }
  return it->second;
}

const uint8_t* SafetensorsFile::raw(const std::string& name) const {
  const SafetensorsTensorInfo& i = info(name);
  return file_.data() + 8 + header_bytes_ + i.begin;
}

Tensor SafetensorsFile::get(const std::string& name) const {
  const SafetensorsTensorInfo& i = info(name);
  TESSEL_CHECK(i.dtype.has_value()) << path() << ": tensor \"" << name << "\" has dtype " << i.dtype_name
                                    << ", which Tessel cannot hold (supported: F32 BF16 F16 I32 I64 U16 U8)"
                                    << " (hint: convert it, e.g. with torch, before loading)";
  Tensor t = Tensor::empty(i.shape, *i.dtype);
  if (t.nbytes() > 0) std::memcpy(t.raw(), raw(name), t.nbytes());
  return t;
}

void SafetensorsWriter::add(const std::string& name, const Tensor& tensor) {
  TESSEL_CHECK(!name.empty() && name != "__metadata__")
      << "safetensors tensor name \"" << name << "\" is reserved or empty";
  TESSEL_CHECK(tensor.defined()) << "safetensors: tensor \"" << name << "\" is undefined";
  TESSEL_CHECK(tensor.device().is_cpu()) << "safetensors: tensor \"" << name << "\" is on " << tensor.device().str()
                                         << " (hint: copy it to the CPU before saving)";
  const bool inserted = tensors_.emplace(name, tensor).second;
  TESSEL_CHECK(inserted) << "safetensors: tensor \"" << name << "\" added twice";
}

void SafetensorsWriter::set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

std::string SafetensorsWriter::header() const {
  std::string json = "{\"__metadata__\":{";
  bool first = true;
  for (const auto& [key, value] : metadata_) {
    if (!first) json += ',';
    first = false;
    append_json_string(json, key);
    json += ':';
    append_json_string(json, value);
  }
  json += '}';
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors_) {
    json += ',';
    append_json_string(json, name);
    json += ":{\"dtype\":\"";
    json += dtype_name(t.dtype());
    json += "\",\"shape\":[";
    for (size_t d = 0; d < t.shape().size(); ++d) {
      if (d) json += ',';
      json += std::to_string(t.shape()[d]);
    }
    json += "],\"data_offsets\":[" + std::to_string(offset) + ',';
    offset += t.nbytes();
    json += std::to_string(offset) + "]}";
  }
  json += '}';
  // Padding to 8 keeps the data buffer 8-aligned in the file, so mapped tensors of any dtype
  // are naturally aligned.
  json.append((8 - json.size() % 8) % 8, ' ');
  return json;
}

void SafetensorsWriter::write(const std::string& path) const {
  const std::string json = header();
  uint8_t length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(uint64_t(json.size()) >> (8 * i));
  AtomicFileWriter out(path);
  out.append(length, sizeof(length));
  out.append(json.data(), json.size());
  for (const auto& entry : tensors_) out.append(entry.second.raw(), entry.second.nbytes());
  out.commit();
}

}  // namespace tessel
