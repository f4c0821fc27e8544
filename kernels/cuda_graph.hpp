#pragma once
// A CUDA graph captured from the work a function queues on a stream, then replayed with one
// launch: a decode step's hundreds of small kernels cost one launch instead of one each.
#include <cuda_runtime.h>

#include <utility>

#include "kernels/cuda_check.hpp"

namespace ringkv {

class CudaGraph {
 public:
  CudaGraph() = default;
  ~CudaGraph() { reset(); }
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;

  // Records what work() queues on stream, without running it, and readies it to launch. The work
  // may only queue stream-ordered operations (no synchronous copies or waits).
  template <class Work>
  void capture(cudaStream_t stream, Work&& work) {
    reset();
    RINGKV_CHECK_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed));
    cudaGraph_t graph = nullptr;
    try {
      std::forward<Work>(work)();
    } catch (...) {
      if (cudaStreamEndCapture(stream, &graph) == cudaSuccess && graph) cudaGraphDestroy(graph);
      cudaGetLastError();  // an invalidated capture's error is reported by the throw, not by the next check
      throw;
    }
    RINGKV_CHECK_CUDA(cudaStreamEndCapture(stream, &graph));
    const cudaError_t status = cudaGraphInstantiate(&exec_, graph, 0);
    cudaGraphDestroy(graph);
    if (status != cudaSuccess) exec_ = nullptr;
    RINGKV_CHECK_CUDA(status);
  }
  void launch(cudaStream_t stream) const { RINGKV_CHECK_CUDA(cudaGraphLaunch(exec_, stream)); }
  void reset() {
    if (exec_) cudaGraphExecDestroy(exec_);
    exec_ = nullptr;
  }

 private:
  cudaGraphExec_t exec_ = nullptr;
};

}  // namespace ringkv
