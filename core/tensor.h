// Tensor: a typed, shaped view of shared storage on a device.
//
// Storage is reference counted and owned jointly by every tensor that views it; a view keeps
// its storage alive. Tensors are contiguous and row-major; views are byte offsets plus a new
// shape (slices along the first dimension, reshapes, or named ranges of a flat buffer). A Tensor
// is a cheap handle: copying it copies the handle, not the data. Not thread-safe for concurrent
// writes to the same elements; distinct views may be written by distinct threads.
//
// Shape letters used in comments across Tessel: B batch, T sequence, C model width, H heads,
// D head dim, V vocab, L layers, F ffn width.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"

namespace tessel {

class DeviceBackend;

struct Device {
  enum class Kind : uint8_t { CPU, CUDA };
  Kind kind = Kind::CPU;
  int index = 0;

  static Device cpu() { return {}; }
  static Device cuda(int index) { return {Kind::CUDA, index}; }
  bool is_cpu() const { return kind == Kind::CPU; }
  bool operator==(const Device& o) const { return kind == o.kind && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const;
};

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& shape);
int64_t shape_numel(const Shape& shape);

// A block of device memory and how to free it. CPU storage is 64-byte aligned so that
// vectorized kernels may use aligned loads on any tensor that starts at offset 0.
class Storage {
 public:
  static std::shared_ptr<Storage> allocate(size_t bytes, Device device);
  // Zero-filled. Large CPU blocks come straight from the kernel's zero pages (mmap), so a
  // multi-gigabyte buffer costs no memset pass and its pages appear when first written.
  static std::shared_ptr<Storage> allocate_zeroed(size_t bytes, Device device);
  // Wraps memory owned elsewhere (an mmap, a caller's buffer, a device allocator's block);
  // `release` runs when the last tensor viewing it goes away, and may be empty. `backend`: the
  // device backend whose ops run on this memory (core/device_backend.h); null on the CPU.
  static std::shared_ptr<Storage> wrap(void* data, size_t bytes, Device device, std::function<void()> release,
                                       DeviceBackend* backend = nullptr);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }
  DeviceBackend* backend() const { return backend_; }

 private:
  Storage() = default;
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
  DeviceBackend* backend_ = nullptr;
  std::function<void()> release_;
};

class Tensor {
 public:
  Tensor() = default;

  static Tensor empty(Shape shape, DType dtype, Device device = Device::cpu());
  static Tensor zeros(Shape shape, DType dtype, Device device = Device::cpu());
  // A tensor over existing storage (memory wrapped with Storage::wrap, say), from its start.
  static Tensor from_storage(std::shared_ptr<Storage> storage, Shape shape, DType dtype);
  // Copies `values` into a new CPU tensor.
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int64_t dim() const { return static_cast<int64_t>(shape_.size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return shape_numel(shape_); }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device() : Device::cpu(); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  size_t byte_offset() const { return offset_; }

  void* raw() const { return static_cast<char*>(storage_->data()) + offset_; }
  // Typed pointer for the host; checks that T matches the dtype (bf16/f16 are read as
  // uint16_t) and that the tensor is in CPU memory (a device tensor is read through its
  // backend's copy; kernels take raw()).
  template <typename T>
  T* data() const;

  // Rows [begin, end) along the first dimension.
  Tensor slice(int64_t begin, int64_t end) const;
  // Same elements, another shape with the same numel.
  Tensor reshape(Shape shape) const;
  // `numel(shape)` elements starting `element_offset` elements into this tensor's data.
  Tensor view(int64_t element_offset, Shape shape) const;

  // On a device these go through the backend that made the tensor (queued on its stream; a
  // copy into CPU memory waits for the data).
  void fill_zero() const;
  void copy_from(const Tensor& src) const;  // same numel and dtype, any two devices
  Tensor clone() const;
  std::string str() const;  // "F32[2, 3] cpu"

 private:
  Tensor(std::shared_ptr<Storage> storage, size_t offset, Shape shape, DType dtype)
      : storage_(std::move(storage)), offset_(offset), shape_(std::move(shape)), dtype_(dtype) {}

  std::shared_ptr<Storage> storage_;
  size_t offset_ = 0;  // bytes from storage start
  Shape shape_;
  DType dtype_ = DType::F32;
};

template <typename T>
T* Tensor::data() const {
  constexpr bool half = std::is_same<T, uint16_t>::value;
  TESSEL_CHECK(dtype_ == dtype_of<T>() || (half && (dtype_ == DType::BF16 || dtype_ == DType::F16)))
      << "tensor " << str() << " accessed with the wrong element type";
  TESSEL_CHECK(device().is_cpu()) << "tensor " << str() << " read as host memory; hint: copy it to the CPU first";
  return static_cast<T*>(raw());
}

template <typename T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape) {
  Tensor t = empty(shape, dtype_of<T>());
  TESSEL_CHECK(static_cast<size_t>(t.numel()) == values.size())
      << "from_vector: " << values.size() << " values for shape " << shape_str(t.shape());
  std::copy(values.begin(), values.end(), t.data<T>());
  return t;
}

}  // namespace tessel
