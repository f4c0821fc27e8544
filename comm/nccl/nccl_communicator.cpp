#include "comm/nccl/nccl_communicator.hpp"

#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "kernels/cuda_check.hpp"
#include "kernels/error.hpp"

namespace ringkv {

int bind_rank_to_gpu(const Communicator& mpi) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0)
    throw Error("[rank " + std::to_string(mpi.rank()) + "] no CUDA device on this node for the GPU backend");
  const int device = mpi.local_rank() % devices;
  RINGKV_CHECK_CUDA(cudaSetDevice(device));
  return device;
}

NcclCommunicator::NcclCommunicator(Communicator& mpi, double timeout_s)
    : mpi_(mpi), rank_(mpi.rank()), size_(mpi.size()), timeout_s_(timeout_s) {
  ncclUniqueId id;
  if (rank_ == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId", "make the NCCL id");
  std::vector<uint8_t> bytes(sizeof id);
  std::memcpy(bytes.data(), &id, sizeof id);
  mpi_.broadcast_bytes(bytes, 0, "send the NCCL id to every rank");
  std::memcpy(&id, bytes.data(), sizeof id);
  RINGKV_CHECK_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  RINGKV_CHECK_CUDA(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming));
  RINGKV_CHECK_CUDA(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming));
  check(ncclCommInitRank(&comm_, size_, id, rank_), "ncclCommInitRank", "start NCCL");
  // NCCL connects peers at their first operation: one ring step and one gather now, so that the
  // connections are not charged to the first prefill.
  DeviceBuffer<uint8_t> bytes_out(1), bytes_in(size_);
  ring_exchange(bytes_out.data(), 1, bytes_in.data(), 1, "connect the ring");
  all_gather(bytes_out.data(), bytes_in.data(), 1, "connect the ranks for gathers");
  synchronize("connect NCCL peers");
}

NcclCommunicator::~NcclCommunicator() {
  if (comm_) ncclCommDestroy(comm_);
  if (ready_) cudaEventDestroy(ready_);
  if (done_) cudaEventDestroy(done_);
  if (stream_) cudaStreamDestroy(stream_);
}

void NcclCommunicator::after(cudaStream_t producer) {
  RINGKV_CHECK_CUDA(cudaEventRecord(ready_, producer));
  RINGKV_CHECK_CUDA(cudaStreamWaitEvent(stream_, ready_, 0));
}

void NcclCommunicator::before(cudaStream_t consumer) {
  RINGKV_CHECK_CUDA(cudaEventRecord(done_, stream_));
  RINGKV_CHECK_CUDA(cudaStreamWaitEvent(consumer, done_, 0));
}

void NcclCommunicator::abort() {
  if (comm_) ncclCommAbort(comm_);  // frees this rank from kernels waiting on a peer, and the communicator
  comm_ = nullptr;
  aborted_ = true;
}

void NcclCommunicator::fail(const std::string& what, const std::string& why) {
  abort();
  throw Error("[rank " + std::to_string(rank_) + "] " + what + ": " + why);
}

void NcclCommunicator::check(ncclResult_t result, const char* call, const char* what) {
  if (result != ncclSuccess && result != ncclInProgress)
    fail(what, std::string(call) + " failed: " + ncclGetErrorString(result));
}

void NcclCommunicator::ring_exchange(const void* send, size_t send_bytes, void* recv, size_t recv_bytes, const char* what) {
  RINGKV_REQUIRE(!aborted_, "NCCL communicator was aborted after an earlier failure");
  if (size_ == 1) {
    RINGKV_REQUIRE(send_bytes == recv_bytes, std::string(what) + ": one rank receives what it sends");
    RINGKV_CHECK_CUDA(cudaMemcpyAsync(recv, send, send_bytes, cudaMemcpyDeviceToDevice, stream_));
    return;
  }
  check(ncclGroupStart(), "ncclGroupStart", what);
  check(ncclSend(send, send_bytes, ncclUint8, (rank_ + 1) % size_, comm_, stream_), "ncclSend", what);
  check(ncclRecv(recv, recv_bytes, ncclUint8, (rank_ + size_ - 1) % size_, comm_, stream_), "ncclRecv", what);
  check(ncclGroupEnd(), "ncclGroupEnd", what);
}

void NcclCommunicator::all_gather(const void* send, void* recv, size_t bytes_per_rank, const char* what) {
  RINGKV_REQUIRE(!aborted_, "NCCL communicator was aborted after an earlier failure");
  check(ncclAllGather(send, recv, bytes_per_rank, ncclUint8, comm_, stream_), "ncclAllGather", what);
}

void NcclCommunicator::broadcast(void* buffer, size_t bytes, int root, const char* what) {
  RINGKV_REQUIRE(!aborted_, "NCCL communicator was aborted after an earlier failure");
  check(ncclBroadcast(buffer, buffer, bytes, ncclUint8, root, comm_, stream_), "ncclBroadcast", what);
}

void NcclCommunicator::wait_for(cudaStream_t stream, const char* what) {
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    const cudaError_t state = cudaStreamQuery(stream);
    if (state == cudaSuccess) return;
    if (state != cudaErrorNotReady) fail(what, std::string("CUDA error ") + cudaGetErrorString(state));
    ncclResult_t async = ncclSuccess;
    check(ncclCommGetAsyncError(comm_, &async), "ncclCommGetAsyncError", what);
    if (async != ncclSuccess && async != ncclInProgress)
      fail(what, std::string("NCCL reported ") + ncclGetErrorString(async) + " (a peer rank failed?)");
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > timeout_s_)
      fail(what, "no progress for " + std::to_string(static_cast<int>(timeout_s_)) +
                     " s: a peer rank stopped answering; the communicator is aborted");
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

}  // namespace ringkv
