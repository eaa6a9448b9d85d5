#include "core/tensor.h"

#include "core/device_backend.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace tessel {

std::string Device::str() const { return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index); }

std::string shape_str(const Shape& shape) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << ']';
  return os.str();
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::shared_ptr<Storage> Storage::allocate(size_t bytes, Device device) {
  TESSEL_CHECK(device.is_cpu()) << "allocation on " << device.str()
                                << " needs the CUDA backend, which this build does not have";
  std::shared_ptr<Storage> s(new Storage());
  const size_t rounded = (bytes + 63) / 64 * 64;
  s->data_ = rounded == 0 ? nullptr : std::aligned_alloc(64, rounded);
  TESSEL_CHECK(rounded == 0 || s->data_ != nullptr) << "out of host memory allocating " << bytes << " bytes";
  s->bytes_ = bytes;
  s->device_ = device;
  void* p = s->data_;
  s->release_ = [p] { std::free(p); };
  return s;
}

std::shared_ptr<Storage> Storage::allocate_zeroed(size_t bytes, Device device) {
  constexpr size_t kMmapBytes = 1 << 20;
  if (!device.is_cpu() || bytes < kMmapBytes) {
    std::shared_ptr<Storage> s = allocate(bytes, device);
    if (bytes > 0) std::memset(s->data(), 0, bytes);
    return s;
  }
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  TESSEL_CHECK(p != MAP_FAILED) << "out of host memory mapping " << bytes << " bytes";
  return wrap(p, bytes, device, [p, bytes] { munmap(p, bytes); });
}

std::shared_ptr<Storage> Storage::wrap(void* data, size_t bytes, Device device, std::function<void()> release,
                                       DeviceBackend* backend) {
  std::shared_ptr<Storage> s(new Storage());
  s->data_ = data;
  s->bytes_ = bytes;
  s->device_ = device;
  s->backend_ = backend;
  s->release_ = std::move(release);
  return s;
}

Storage::~Storage() {
  if (release_) release_();
}

Tensor Tensor::empty(Shape shape, DType dtype, Device device) {
  for (int64_t d : shape) TESSEL_CHECK(d >= 0) << "negative dimension in shape " << shape_str(shape);
  const size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  return Tensor(Storage::allocate(bytes, device), 0, std::move(shape), dtype);
}

Tensor Tensor::from_storage(std::shared_ptr<Storage> storage, Shape shape, DType dtype) {
  TESSEL_CHECK(storage != nullptr) << "Tensor::from_storage: null storage";
  const size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  TESSEL_CHECK(bytes <= storage->bytes()) << "Tensor::from_storage: " << bytes << " bytes of " << dtype_name(dtype)
                                          << " do not fit a storage of " << storage->bytes();
  return Tensor(std::move(storage), 0, std::move(shape), dtype);
}

Tensor Tensor::zeros(Shape shape, DType dtype, Device device) {
  for (int64_t d : shape) TESSEL_CHECK(d >= 0) << "negative dimension in shape " << shape_str(shape);
  const size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  return Tensor(Storage::allocate_zeroed(bytes, device), 0, std::move(shape), dtype);
}

int64_t Tensor::size(int64_t d) const {
  const int64_t n = dim();
  if (d < 0) d += n;
  TESSEL_CHECK(d >= 0 && d < n) << "dimension " << d << " out of range for " << str();
  return shape_[static_cast<size_t>(d)];
}

Tensor Tensor::slice(int64_t begin, int64_t end) const {
  TESSEL_CHECK(dim() >= 1 && 0 <= begin && begin <= end && end <= shape_[0])
      << "slice [" << begin << ", " << end << ") out of range for " << str();
  Shape s = shape_;
  s[0] = end - begin;
  const int64_t row = s.size() > 1 ? shape_numel(Shape(s.begin() + 1, s.end())) : 1;
  return Tensor(storage_, offset_ + static_cast<size_t>(begin * row) * dtype_size(dtype_), s, dtype_);
}

Tensor Tensor::reshape(Shape shape) const {
  TESSEL_CHECK(shape_numel(shape) == numel()) << "cannot reshape " << str() << " to " << shape_str(shape);
  return Tensor(storage_, offset_, std::move(shape), dtype_);
}

Tensor Tensor::view(int64_t element_offset, Shape shape) const {
  TESSEL_CHECK(element_offset >= 0 && element_offset + shape_numel(shape) <= numel())
      << "view of " << shape_str(shape) << " at element " << element_offset << " does not fit in " << str();
  return Tensor(storage_, offset_ + static_cast<size_t>(element_offset) * dtype_size(dtype_), std::move(shape), dtype_);
}

void Tensor::fill_zero() const {
  if (!device().is_cpu()) {
    TESSEL_CHECK(storage_->backend() != nullptr) << "fill_zero on " << str() << ": no device backend made it";
    storage_->backend()->fill_zero(*this);
    return;
  }
  // Gradient buffers are zeroed every step; one thread cannot saturate memory bandwidth.
  constexpr int64_t kChunk = 4 << 20;
  const int64_t n = static_cast<int64_t>(nbytes());
  char* p = static_cast<char*>(raw());
#pragma omp parallel for schedule(static) if (n > kChunk)
  for (int64_t off = 0; off < n; off += kChunk) {
    std::memset(p + off, 0, static_cast<size_t>(std::min(kChunk, n - off)));
  }
}

void Tensor::copy_from(const Tensor& src) const {
  TESSEL_CHECK(src.numel() == numel() && src.dtype() == dtype()) << "copy_from: " << src.str() << " into " << str();
  if (!device().is_cpu() || !src.device().is_cpu()) {
    DeviceBackend* b = !device().is_cpu() ? storage_->backend() : src.storage()->backend();
    TESSEL_CHECK(b != nullptr) << "copy_from: " << src.str() << " into " << str() << ": no device backend made them";
    b->copy(*this, src);
    return;
  }
  if (nbytes() > 0 && raw() != src.raw()) std::memmove(raw(), src.raw(), nbytes());  // onto itself: nothing to do
}

Tensor Tensor::clone() const {
  TESSEL_CHECK(device().is_cpu() || storage_->backend() != nullptr)
      << "clone of " << str() << ": no device backend made it";
  Tensor t = device().is_cpu() ? empty(shape_, dtype_) : storage_->backend()->empty(shape_, dtype_);
  t.copy_from(*this);
  return t;
}

Tensor empty_on(DeviceBackend* device, const Shape& shape, DType dtype) {
  return device != nullptr ? device->empty(shape, dtype) : Tensor::empty(shape, dtype);
}

Tensor zeros_on(DeviceBackend* device, const Shape& shape, DType dtype) {
  if (device == nullptr) return Tensor::zeros(shape, dtype);
  Tensor t = device->empty(shape, dtype);
  t.fill_zero();
  return t;
}

std::string Tensor::str() const { return std::string(dtype_name(dtype_)) + shape_str(shape_) + " " + device().str(); }

}  // namespace tessel
