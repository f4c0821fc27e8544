#include "comm/communicator.hpp"

#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <thread>

#include "kernels/error.hpp"

// Checks an MPI call; errors come back as codes (MPI_ERRORS_RETURN) and become ringkv::Error.
#define RINGKV_CHECK_MPI(call, what)                                                                 \
  do {                                                                                               \
    const int ringkv_mpi_status = (call);                                                            \
    if (ringkv_mpi_status != MPI_SUCCESS) ::ringkv::mpi_failed(#call, what, ringkv_mpi_status, __FILE__, __LINE__); \
  } while (0)

namespace ringkv {

namespace {
[[noreturn]] void mpi_failed(const char* call, const char* what, int status, const char* file, int line) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(status, text, &length);
  int initialized = 0, finalized = 0, rank = -1;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  fail("[rank " + std::to_string(rank) + "] " + what + ": " + call + " failed: " + std::string(text, length), file,
       line);
}

void finalize_mpi() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}
}  // namespace

Communicator::Communicator() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    // Ring steps run on their own thread so that they overlap compute (MPI moves data only inside
    // MPI calls); without thread support they fall back to nonblocking calls completed in wait().
    RINGKV_CHECK_MPI(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided), "start the MPI runtime");
    std::atexit(finalize_mpi);
  }
  int level = MPI_THREAD_SINGLE;
  RINGKV_CHECK_MPI(MPI_Query_thread(&level), "query MPI thread support");
  threads_ = level == MPI_THREAD_MULTIPLE;
  RINGKV_CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "set MPI error handler");
  RINGKV_CHECK_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "query rank");
  RINGKV_CHECK_MPI(MPI_Comm_size(MPI_COMM_WORLD, &size_), "query size");
  MPI_Comm node;
  RINGKV_CHECK_MPI(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node),
                   "group the ranks of each node");
  RINGKV_CHECK_MPI(MPI_Comm_rank(node, &local_rank_), "query the rank on this node");
  RINGKV_CHECK_MPI(MPI_Comm_size(node, &local_size_), "query the ranks on this node");
  MPI_Comm_free(&node);
}

Communicator& Communicator::world() {
  static Communicator instance;
  return instance;
}

void Communicator::barrier(const char* what) { RINGKV_CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD), what); }

std::vector<std::vector<uint8_t>> Communicator::all_gather_bytes(std::span<const uint8_t> mine, const char* what) {
  const int my_size = static_cast<int>(mine.size());
  RINGKV_REQUIRE(mine.size() <= static_cast<size_t>(INT32_MAX), std::string(what) + ": payload over 2 GiB");
  std::vector<int> sizes(size_), offsets(size_);
  RINGKV_CHECK_MPI(MPI_Allgather(&my_size, 1, MPI_INT, sizes.data(), 1, MPI_INT, MPI_COMM_WORLD), what);
  long long total = 0;
  for (int r = 0; r < size_; ++r) offsets[r] = static_cast<int>(total), total += sizes[r];
  RINGKV_REQUIRE(total <= INT32_MAX, std::string(what) + ": gathered payload over 2 GiB");
  std::vector<uint8_t> all(static_cast<size_t>(total));
  RINGKV_CHECK_MPI(MPI_Allgatherv(mine.data(), my_size, MPI_BYTE, all.data(), sizes.data(), offsets.data(), MPI_BYTE,
                                  MPI_COMM_WORLD),
                   what);
  std::vector<std::vector<uint8_t>> out(size_);
  for (int r = 0; r < size_; ++r) out[r].assign(all.begin() + offsets[r], all.begin() + offsets[r] + sizes[r]);
  return out;
}

void Communicator::broadcast_bytes(std::vector<uint8_t>& bytes, int root, const char* what) {
  unsigned long long n = bytes.size();
  RINGKV_CHECK_MPI(MPI_Bcast(&n, 1, MPI_UNSIGNED_LONG_LONG, root, MPI_COMM_WORLD), what);
  RINGKV_REQUIRE(n <= static_cast<unsigned long long>(INT32_MAX), std::string(what) + ": payload over 2 GiB");
  bytes.resize(n);
  RINGKV_CHECK_MPI(MPI_Bcast(bytes.data(), static_cast<int>(n), MPI_BYTE, root, MPI_COMM_WORLD), what);
}

struct RingTransfer::Requests {
  std::string what;
  std::vector<uint8_t> received;
  MPI_Request requests[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
  std::thread worker;    // the blocking exchange, where MPI allows threads
  int status = MPI_SUCCESS;
};

RingTransfer::RingTransfer(std::unique_ptr<Requests> requests) : requests_(std::move(requests)) {}
RingTransfer::RingTransfer(RingTransfer&&) noexcept = default;

RingTransfer::~RingTransfer() {
  // A transfer abandoned by an exception still completes, so that no buffer is freed under MPI.
  if (!requests_) return;
  if (requests_->worker.joinable()) requests_->worker.join();
  MPI_Waitall(2, requests_->requests, MPI_STATUSES_IGNORE);
}

std::vector<uint8_t> RingTransfer::wait() {
  RINGKV_REQUIRE(requests_, "ring transfer waited on twice");
  if (requests_->worker.joinable()) requests_->worker.join();
  RINGKV_CHECK_MPI(requests_->status, requests_->what.c_str());
  RINGKV_CHECK_MPI(MPI_Waitall(2, requests_->requests, MPI_STATUSES_IGNORE), requests_->what.c_str());
  std::vector<uint8_t> received = std::move(requests_->received);
  requests_.reset();
  return received;
}

RingTransfer Communicator::start_ring_exchange(std::span<const uint8_t> mine, const char* what) {
  auto r = std::make_unique<RingTransfer::Requests>();
  r->what = what;
  if (size_ == 1) {
    r->received.assign(mine.begin(), mine.end());
    return RingTransfer(std::move(r));
  }
  RINGKV_REQUIRE(mine.size() <= static_cast<size_t>(INT32_MAX), std::string(what) + ": payload over 2 GiB");
  const int next = (rank_ + 1) % size_, previous = (rank_ + size_ - 1) % size_;
  const int my_size = static_cast<int>(mine.size());
  int their_size = 0;
  RINGKV_CHECK_MPI(MPI_Sendrecv(&my_size, 1, MPI_INT, next, 0, &their_size, 1, MPI_INT, previous, 0, MPI_COMM_WORLD,
                                MPI_STATUS_IGNORE),
                   what);
  r->received.resize(static_cast<size_t>(their_size));
  if (threads_) {
    RingTransfer::Requests* q = r.get();
    q->worker = std::thread([q, mine, my_size, their_size, next, previous] {
      q->status = MPI_Sendrecv(mine.data(), my_size, MPI_BYTE, next, 1, q->received.data(), their_size, MPI_BYTE, previous,
                               1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    });
  } else {
    RINGKV_CHECK_MPI(MPI_Irecv(r->received.data(), their_size, MPI_BYTE, previous, 1, MPI_COMM_WORLD, &r->requests[0]), what);
    RINGKV_CHECK_MPI(MPI_Isend(mine.data(), my_size, MPI_BYTE, next, 1, MPI_COMM_WORLD, &r->requests[1]), what);
  }
  return RingTransfer(std::move(r));
}

std::vector<uint8_t> Communicator::ring_exchange_bytes(std::span<const uint8_t> mine, const char* what) {
  return start_ring_exchange(mine, what).wait();
}

int abort_all(const std::string& message) {
  int initialized = 0, finalized = 0, rank = 0, size = 1;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
  }
  std::fprintf(stderr, "ringkv: [rank %d] error: %s\n", rank, message.c_str());
  std::fflush(stderr);
  if (size > 1) MPI_Abort(MPI_COMM_WORLD, 1);
  return 1;
}

}  // namespace ringkv
