// The NCCL backend on the job's GPUs, one per rank (ctest runs it on one rank; `mpirun -np P` on
// P GPUs): ring steps, all-gathers and broadcasts of device buffers agree with the MPI backend,
// partial attention states gathered over NCCL merge on the GPU as on the CPU, and a peer that
// stops answering becomes an error on this rank, not a hang. Skipped without enough GPUs.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <random>

#include "comm/nccl/nccl_communicator.hpp"
#include "kernels/attention_state.hpp"
#include "kernels/cuda_check.hpp"
#include "kernels/merge_states_gpu.hpp"

namespace ringkv {
namespace {

bool enough_gpus() {
  const Communicator& mpi = Communicator::world();
  return cuda_device_count() >= mpi.local_size();
}

#define SKIP_WITHOUT_GPUS()                                                                       \
  if (!enough_gpus()) GTEST_SKIP() << "needs one CUDA device per rank on the node: NCCL test skipped"; \
  bind_rank_to_gpu(Communicator::world())

// Rank r's payload: by default 1000 * (r + 1) + 17 bytes, so that every pair of ranks sends different sizes.
std::vector<uint8_t> payload_of(int rank, size_t size = 0) {
  std::vector<uint8_t> bytes(size ? size : 1000 * static_cast<size_t>(rank + 1) + 17);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(rank * 31 + i * 7);
  return bytes;
}

TEST(NcclCommunicator, RingStepsPassEveryPayloadAroundAsMpiDoes) {
  SKIP_WITHOUT_GPUS();
  Communicator& mpi = Communicator::world();
  NcclCommunicator nccl(mpi);
  const int p = nccl.size(), r = nccl.rank();
  std::vector<uint8_t> held = payload_of(r);
  DeviceBuffer<uint8_t> send(held.size());
  send.upload(held.data());
  for (int step = 1; step <= p; ++step) {
    const int from = ((r - step) % p + p) % p;
    DeviceBuffer<uint8_t> recv(payload_of(from).size());
    recv.poison();
    nccl.after(nullptr);  // the poison and upload ran on the default stream
    nccl.ring_exchange(send.data(), send.size(), recv.data(), recv.size(), "test ring");
    nccl.synchronize("test ring");
    std::vector<uint8_t> got(recv.size());
    recv.download(got.data());
    EXPECT_EQ(got, payload_of(from)) << "step " << step;
    send = std::move(recv);
  }
}

TEST(NcclCommunicator, GathersAndBroadcastsAsMpiDoes) {
  SKIP_WITHOUT_GPUS();
  Communicator& mpi = Communicator::world();
  NcclCommunicator nccl(mpi);
  const size_t n = 4099;
  const std::vector<uint8_t> mine = payload_of(nccl.rank(), n);
  DeviceBuffer<uint8_t> send(n), all(n * nccl.size());
  send.upload(mine.data());
  all.poison();
  nccl.after(nullptr);
  nccl.all_gather(send.data(), all.data(), n, "test gather");
  nccl.synchronize("test gather");
  std::vector<uint8_t> got(all.size());
  all.download(got.data());
  const auto want = mpi.all_gather_bytes({mine.data(), n}, "test gather over MPI");
  for (int r = 0; r < nccl.size(); ++r)
    EXPECT_TRUE(std::equal(want[r].begin(), want[r].end(), got.begin() + r * n)) << "rank " << r;
  for (int root = 0; root < nccl.size(); ++root) {
    DeviceBuffer<uint8_t> buffer(n);
    buffer.upload(mine.data());
    nccl.after(nullptr);
    nccl.broadcast(buffer.data(), n, root, "test broadcast");
    nccl.synchronize("test broadcast");
    std::vector<uint8_t> b(n);
    buffer.download(b.data());
    const std::vector<uint8_t> root_payload = payload_of(root, n);
    EXPECT_TRUE(std::equal(b.begin(), b.end(), root_payload.begin())) << "root " << root;
  }
}

TEST(NcclCommunicator, GatheredPartialStatesMergeOnTheGpuAsOnTheCpu) {
  SKIP_WITHOUT_GPUS();
  Communicator& mpi = Communicator::world();
  NcclCommunicator nccl(mpi);
  const int queries = 32, d = 128, p = nccl.size();  // decode: 32 query heads of one token
  std::mt19937 rng(100 + nccl.rank());
  std::normal_distribution<float> normal;
  std::vector<float> out(static_cast<size_t>(queries) * d), lse(queries);
  for (float& x : out) x = normal(rng);
  for (float& x : lse) x = 4 * normal(rng);
  lse[5] = -INFINITY;  // no shard holds keys for this query
  if (nccl.rank() == p - 1) lse[6] = -INFINITY;  // this shard holds none for that one
  DeviceBuffer<float> d_out(out.size()), d_lse(lse.size()), all_out(out.size() * p), all_lse(lse.size() * p);
  DeviceBuffer<float> merged_out(out.size()), merged_lse(lse.size());
  d_out.upload(out.data());
  d_lse.upload(lse.data());
  merged_out.poison();
  merged_lse.poison();
  nccl.after(nullptr);
  nccl.all_gather(d_out.data(), all_out.data(), out.size() * sizeof(float), "gather outs");
  nccl.all_gather(d_lse.data(), all_lse.data(), lse.size() * sizeof(float), "gather lses");
  merge_states_gpu(p, queries, d, all_out.data(), all_lse.data(), merged_out.data(), merged_lse.data(), nccl.stream());
  nccl.synchronize("merge gathered states");
  std::vector<float> got(out.size()), got_lse(lse.size());
  merged_out.download(got.data());
  merged_lse.download(got_lse.data());

  const auto bytes = [](const std::vector<float>& v) { return std::span(reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4); };
  const auto outs = mpi.all_gather_bytes(bytes(out), "outs over MPI"), lses = mpi.all_gather_bytes(bytes(lse), "lses over MPI");
  std::vector<float> host_outs, host_lses;
  for (int r = 0; r < p; ++r) {
    const auto* o = reinterpret_cast<const float*>(outs[r].data());
    const auto* l = reinterpret_cast<const float*>(lses[r].data());
    host_outs.insert(host_outs.end(), o, o + out.size());
    host_lses.insert(host_lses.end(), l, l + lse.size());
  }
  std::vector<float> want(out.size()), want_lse(lse.size());
  merge_states_cpu(p, queries, d, host_outs.data(), host_lses.data(), want.data(), want_lse.data());
  for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-5f * (1 + std::fabs(want[i])));
  for (int q = 0; q < queries; ++q) {
    if (std::isinf(want_lse[q])) {
      ASSERT_EQ(got_lse[q], want_lse[q]) << "query " << q;
    } else {
      ASSERT_NEAR(got_lse[q], want_lse[q], 1e-5f * (1 + std::fabs(want_lse[q]))) << "query " << q;
    }
  }
}

TEST(NcclCommunicator, APeerThatStopsAnsweringIsAnErrorNotAHang) {
  SKIP_WITHOUT_GPUS();
  Communicator& mpi = Communicator::world();
  if (mpi.size() < 2) GTEST_SKIP() << "needs two ranks";
  NcclCommunicator nccl(mpi, 3.0);
  DeviceBuffer<uint8_t> send(64), recv(64);
  if (nccl.rank() == 1) nccl.abort();  // rank 1 leaves NCCL, as a failing rank does
  if (nccl.rank() == 0) {
    // Rank 0's ring step cannot finish: NCCL refuses it when it is enqueued (the peer's connection
    // is gone) or the wait gives up after the timeout; either way an error names rank and step.
    const auto start = std::chrono::steady_clock::now();
    try {
      nccl.ring_exchange(send.data(), 64, recv.data(), 64, "ring step with a silent peer");
      nccl.synchronize("ring step with a silent peer");
      ADD_FAILURE() << "the ring step finished without its peer";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("[rank 0] ring step with a silent peer: "), std::string::npos) << e.what();
    }
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 150.0);
  }
  mpi.barrier("after the silent peer");
}

}  // namespace
}  // namespace ringkv
