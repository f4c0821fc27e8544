// The MPI communicator on any number of ranks (ctest runs it as one; `mpirun -np P` runs it as P).
#include <gtest/gtest.h>

#include "comm/communicator.hpp"
#include "kernels/error.hpp"

namespace ringkv {
namespace {

// Rank r's payload: r + 1 bytes (r = 0 gives one, so sizes differ between every pair of ranks),
// a zero-byte payload for the last rank when there are several.
std::vector<uint8_t> payload_of(int rank, int size) {
  if (size > 1 && rank == size - 1) return {};
  std::vector<uint8_t> bytes(static_cast<size_t>(rank) + 1);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(rank * 16 + i);
  return bytes;
}

TEST(Communicator, GathersPayloadsOfDifferentSizesFromEveryRank) {
  Communicator& comm = Communicator::world();
  ASSERT_GE(comm.size(), 1);
  ASSERT_GE(comm.rank(), 0);
  ASSERT_LT(comm.rank(), comm.size());
  const auto all = comm.all_gather_bytes(payload_of(comm.rank(), comm.size()), "test gather");
  ASSERT_EQ(all.size(), static_cast<size_t>(comm.size()));
  for (int r = 0; r < comm.size(); ++r) EXPECT_EQ(all[r], payload_of(r, comm.size())) << "rank " << r;
}

TEST(Communicator, RingExchangePassesEveryPayloadOnceAroundTheRing) {
  Communicator& comm = Communicator::world();
  const int p = comm.size(), r = comm.rank();
  std::vector<uint8_t> held = payload_of(r, p);
  for (int step = 1; step <= p; ++step) {
    held = comm.ring_exchange_bytes(held, "test ring");
    EXPECT_EQ(held, payload_of((r - step % p + p) % p, p)) << "step " << step;  // after P steps, our own again
  }
}

TEST(Communicator, BroadcastsFromEveryRoot) {
  Communicator& comm = Communicator::world();
  for (int root = 0; root < comm.size(); ++root) {
    const std::vector<uint8_t> sent(static_cast<size_t>(root) * 1000 + 3, static_cast<uint8_t>(root + 1));
    std::vector<uint8_t> bytes = comm.rank() == root ? sent : std::vector<uint8_t>(7, 0);
    comm.broadcast_bytes(bytes, root, "test broadcast");
    EXPECT_EQ(bytes, sent) << "root " << root;
  }
  comm.barrier("test barrier");
}

TEST(Communicator, FailedCallsNameTheCallTheOperationAndTheRank) {
  Communicator& comm = Communicator::world();
  std::vector<uint8_t> bytes{1};
  try {
    comm.broadcast_bytes(bytes, comm.size(), "broadcast from a rank that does not exist");
    FAIL() << "MPI_Bcast accepted root " << comm.size();
  } catch (const Error& e) {
    const std::string message = e.what();
    const std::vector<std::string> expected{"MPI_Bcast", "broadcast from a rank that does not exist",
                                            "[rank " + std::to_string(comm.rank()) + "]", "communicator.cpp:"};
    for (const std::string& words : expected)
      EXPECT_NE(message.find(words), std::string::npos) << message;
  }
}

TEST(Communicator, AbortAllOnOneRankReportsAndReturnsTheExitCode) {
  Communicator& comm = Communicator::world();
  if (comm.size() > 1) GTEST_SKIP() << "on several ranks abort_all ends the job";
  ::testing::internal::CaptureStderr();
  const int code = abort_all("disk full");
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "ringkv: [rank 0] error: disk full\n");
  EXPECT_EQ(code, 1);
}

}  // namespace
}  // namespace ringkv
