#pragma once
// The GPU backend of the job's communication: one NCCL communicator over all ranks of the job
// (rank 0 makes the unique id and sends it over MPI), on its own stream, moving device buffers.
// Operations are enqueued and return at once; other streams order themselves around them with
// after() and before(), so that no host thread waits between layers. synchronize() and wait_for()
// wait while watching NCCL's asynchronous errors, and a peer that stops answering (a dead rank) ends
// in an exception naming this rank and the operation after a timeout, the communicator aborted,
// instead of a hang.
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstddef>
#include <string>

#include "comm/communicator.hpp"

namespace ringkv {

// Binds this rank to a GPU by its rank on the node (local_rank % visible devices) and returns the
// device; refuses when the node has no GPU.
int bind_rank_to_gpu(const Communicator& mpi);

class NcclCommunicator {
 public:
  // Collective over the job's ranks; the rank's GPU must be selected (bind_rank_to_gpu) first.
  explicit NcclCommunicator(Communicator& mpi, double timeout_s = 120);
  ~NcclCommunicator();
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  cudaStream_t stream() const { return stream_; }

  // Later operations wait for the work queued so far on `producer` (the kernels or copies that
  // wrote the buffers they send or receive into): the communicator's stream does not otherwise
  // order itself after other streams, the legacy default stream (0) included.
  void after(cudaStream_t producer);
  // Later work on `consumer` waits for the operations enqueued so far (it reads what they received).
  void before(cudaStream_t consumer);

  // One ring step of device bytes: sends send_bytes to rank + 1 and receives recv_bytes from
  // rank - 1 (the sizes are agreed beforehand, e.g. over MPI). Ring attention passes pages with it.
  void ring_exchange(const void* send, size_t send_bytes, void* recv, size_t recv_bytes, const char* what);
  // recv[r * bytes_per_rank ...] = rank r's send, on every rank (partial attention states in decode).
  void all_gather(const void* send, void* recv, size_t bytes_per_rank, const char* what);
  void broadcast(void* buffer, size_t bytes, int root, const char* what);
  // Waits for everything enqueued so far; see the class comment for failures.
  void synchronize(const char* what) { wait_for(stream_, what); }
  // Waits for the work queued on `stream`, which may wait on this communicator's operations, with
  // the same watch.
  void wait_for(cudaStream_t stream, const char* what);
  // Abandons the communicator at once (this rank is failing): operations in flight end, and later
  // calls refuse. Peers see this rank stop answering.
  void abort();

 private:
  [[noreturn]] void fail(const std::string& what, const std::string& why);
  void check(ncclResult_t result, const char* call, const char* what);

  Communicator& mpi_;
  int rank_ = 0, size_ = 1;
  double timeout_s_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t ready_ = nullptr;  // marks a producer's work for after()
  cudaEvent_t done_ = nullptr;   // marks this stream's operations for before()
  bool aborted_ = false;
};

}  // namespace ringkv
