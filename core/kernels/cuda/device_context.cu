// DeviceContext: device tensors from the caching allocator over cudaMalloc, and copies.
#include "core/kernels/cuda/device_context.h"

#include <map>
#include <sstream>

#include "core/kernels/cuda/cuda_check.h"

namespace tessel {
namespace cuda {
namespace {

// cudaMalloc/cudaFree and events for the allocator. cudaFree synchronizes the device, which is
// why the allocator calls it only when emptying its cache, never in a steady step.
class CudaMemoryBackend final : public MemoryBackend {
 public:
  explicit CudaMemoryBackend(int device) : device_(device) {}
  ~CudaMemoryBackend() override {
    for (auto& kv : events_) cudaEventDestroy(kv.second);
  }

  void* raw_allocate(size_t bytes) override {
    TESSEL_CUDA_CHECK(cudaSetDevice(device_));
    void* p = nullptr;
    const cudaError_t rc = cudaMalloc(&p, bytes);
    if (rc == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear the sticky-free error so the retry starts clean
      return nullptr;
    }
    TESSEL_CUDA_CHECK(rc);
    return p;
  }
  void raw_free(void* ptr) override { TESSEL_CUDA_CHECK(cudaFree(ptr)); }
  uint64_t record_event(StreamId stream) override {
    cudaEvent_t e;
    TESSEL_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    TESSEL_CUDA_CHECK(cudaEventRecord(e, reinterpret_cast<cudaStream_t>(stream)));
    events_[++next_] = e;
    return next_;
  }
  bool event_done(uint64_t event) override {
    const cudaError_t rc = cudaEventQuery(events_.at(event));
    if (rc == cudaErrorNotReady) return false;
    TESSEL_CUDA_CHECK(rc);
    return true;
  }
  void wait_event(uint64_t event) override { TESSEL_CUDA_CHECK(cudaEventSynchronize(events_.at(event))); }
  void release_event(uint64_t event) override {
    auto it = events_.find(event);
    if (it == events_.end()) return;
    cudaEventDestroy(it->second);
    events_.erase(it);
  }

 private:
  int device_;
  uint64_t next_ = 0;
  std::map<uint64_t, cudaEvent_t> events_;
};

StreamId stream_id(cudaStream_t s) { return reinterpret_cast<StreamId>(s); }

// Runs before the stream and the cuBLASLt handle are made, so that they belong to `device`.
int select_device(int device) {
  TESSEL_CUDA_CHECK(cudaSetDevice(device));
  return device;
}

}  // namespace

struct DeviceContext::Memory {
  explicit Memory(int device) : backend(device), allocator(backend, Device::cuda(device).str()) {}
  CudaMemoryBackend backend;
  CachingAllocator allocator;
};

DeviceContext::DeviceContext(int device) : device_(select_device(device)) {
  memory_ = std::make_shared<Memory>(device);
}

DeviceContext::~DeviceContext() {
  // Queued work may still read blocks that tensors released: let it finish before they can be
  // handed out again by a later context or returned to the driver.
  cudaStreamSynchronize(compute_.get());
}

CachingAllocator& DeviceContext::allocator() { return memory_->allocator; }
const CachingAllocator& DeviceContext::memory_allocator() const { return memory_->allocator; }

Tensor DeviceContext::empty(const Shape& shape, DType dtype) {
  for (int64_t d : shape) TESSEL_CHECK(d >= 0) << "negative dimension in shape " << shape_str(shape);
  const size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  std::shared_ptr<Memory> memory = memory_;
  void* p = memory->allocator.allocate(bytes, stream_id(compute_.get()));
  auto storage = Storage::wrap(
      p, bytes, Device::cuda(device_), [memory, p] { memory->allocator.free(p); }, this);
  return Tensor::from_storage(std::move(storage), shape, dtype);
}

Tensor DeviceContext::zeros(const Shape& shape, DType dtype) { return zeros_on(this, shape, dtype); }

void DeviceContext::fill_zero(const Tensor& t) {
  TESSEL_CHECK(t.device() == device()) << "DeviceContext::fill_zero: " << t.str() << " is not on " << device().str();
  if (t.nbytes() > 0) TESSEL_CUDA_CHECK(cudaMemsetAsync(t.raw(), 0, t.nbytes(), compute_.get()));
}

void DeviceContext::copy(const Tensor& dst, const Tensor& src) {
  TESSEL_CHECK(dst.numel() == src.numel() && dst.dtype() == src.dtype())
      << "DeviceContext::copy: " << src.str() << " into " << dst.str();
  if (dst.nbytes() == 0) return;
  TESSEL_CUDA_CHECK(cudaMemcpyAsync(dst.raw(), src.raw(), dst.nbytes(), cudaMemcpyDefault, compute_.get()));
  if (dst.device().is_cpu()) synchronize();
}

Tensor DeviceContext::to_device(const Tensor& host) {
  TESSEL_CHECK(host.device().is_cpu()) << "to_device: " << host.str() << " is not a CPU tensor";
  Tensor t = empty(host.shape(), host.dtype());
  copy(t, host);
  return t;
}

Tensor DeviceContext::to_host(const Tensor& device_tensor) {
  Tensor t = Tensor::empty(device_tensor.shape(), device_tensor.dtype());
  copy(t, device_tensor);
  return t;
}

std::string DeviceContext::describe() const {
  cudaDeviceProp prop{};
  TESSEL_CUDA_CHECK(cudaGetDeviceProperties(&prop, device_));
  std::ostringstream os;
  os.precision(1);
  os << prop.name << ", " << std::fixed << static_cast<double>(prop.totalGlobalMem) / (1ull << 30) << " GiB, sm_"
     << prop.major << prop.minor;
  return os.str();
}

}  // namespace cuda
}  // namespace tessel
