#pragma once
// The ranks of a RingKV job. This is the MPI backend on host buffers, which every distributed code
// path uses on CPU; programs run the same with `mpirun -np P`, with -np 1, and without mpirun.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace ringkv {

// A ring step in flight (see Communicator::start_ring_exchange): wait() returns what the previous
// rank sent. The bytes being sent must stay alive until then.
class RingTransfer {
 public:
  RingTransfer(RingTransfer&&) noexcept;
  ~RingTransfer();
  std::vector<uint8_t> wait();

 private:
  friend class Communicator;
  struct Requests;
  explicit RingTransfer(std::unique_ptr<Requests> requests);
  std::unique_ptr<Requests> requests_;
};

class Communicator {
 public:
  // The job's communicator; initializes MPI on first use and finalizes it at exit.
  static Communicator& world();

  int rank() const { return rank_; }
  int size() const { return size_; }
  // This rank among the ranks on its node: binds ranks to GPUs and divides the node's memory.
  int local_rank() const { return local_rank_; }
  int local_size() const { return local_size_; }

  void barrier(const char* what);
  // Every rank's bytes (sizes may differ), indexed by rank, on every rank.
  std::vector<std::vector<uint8_t>> all_gather_bytes(std::span<const uint8_t> mine, const char* what);
  void broadcast_bytes(std::vector<uint8_t>& bytes, int root, const char* what);
  // One ring step: sends `mine` to rank + 1 and returns what rank - 1 sent (sizes may differ; P = 1
  // returns `mine`). Ring attention passes pages around the ranks with it.
  std::vector<uint8_t> ring_exchange_bytes(std::span<const uint8_t> mine, const char* what);
  // The same step started without waiting, so that compute overlaps the transfer.
  RingTransfer start_ring_exchange(std::span<const uint8_t> mine, const char* what);

 private:
  Communicator();
  int rank_ = 0;
  int size_ = 1;
  int local_rank_ = 0;
  int local_size_ = 1;
  bool threads_ = false;  // MPI_THREAD_MULTIPLE: ring steps on a thread of their own
};

// Prints "[rank r] error: message" and takes every rank of the job down (MPI_Abort), so that no
// rank waits forever in a collective for one that failed. Returns the exit code when running alone.
int abort_all(const std::string& message);

}  // namespace ringkv
