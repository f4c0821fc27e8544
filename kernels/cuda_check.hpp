#pragma once
// Checking of CUDA runtime calls, and RAII owners of device memory and streams.
#include <cuda_runtime.h>

#include <cstddef>
#include <string>

#include "kernels/error.hpp"

#define RINGKV_CHECK_CUDA(call)                                                                       \
  do {                                                                                                \
    const cudaError_t ringkv_status = (call);                                                         \
    if (ringkv_status != cudaSuccess)                                                                 \
      ::ringkv::fail(std::string(#call) + " failed: " + cudaGetErrorString(ringkv_status), __FILE__, __LINE__); \
  } while (0)

namespace ringkv {

// Number of CUDA devices, 0 when there is no driver or no device (never throws).
int cuda_device_count();
// The current device's multiprocessors (132, an H100's, when it cannot be asked), for split counts.
int multiprocessor_count();
// The most dynamic shared memory a block of the current device may opt into.
int max_shared_bytes_per_block();

template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t count) : count_(count) {
    if (count_) RINGKV_CHECK_CUDA(cudaMalloc(&data_, count_ * sizeof(T)));
  }
  ~DeviceBuffer() {
    if (data_) cudaFree(data_);
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept : data_(o.data_), count_(o.count_) { o.data_ = nullptr, o.count_ = 0; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(count_, o.count_);
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return count_; }
  void upload(const T* host) { RINGKV_CHECK_CUDA(cudaMemcpy(data_, host, count_ * sizeof(T), cudaMemcpyHostToDevice)); }
  void download(T* host) const { RINGKV_CHECK_CUDA(cudaMemcpy(host, data_, count_ * sizeof(T), cudaMemcpyDeviceToHost)); }
  // Fills with a byte pattern, so tests can tell untouched outputs from written ones.
  void poison(unsigned char byte = 0xFF) { RINGKV_CHECK_CUDA(cudaMemset(data_, byte, count_ * sizeof(T))); }

 private:
  T* data_ = nullptr;
  size_t count_ = 0;
};

// A non-blocking CUDA stream, destroyed with its owner.
class CudaStream {
 public:
  CudaStream() { RINGKV_CHECK_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
  ~CudaStream() { cudaStreamDestroy(stream_); }
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;
  cudaStream_t get() const { return stream_; }
  void synchronize() const { RINGKV_CHECK_CUDA(cudaStreamSynchronize(stream_)); }

 private:
  cudaStream_t stream_ = nullptr;
};

}  // namespace ringkv
