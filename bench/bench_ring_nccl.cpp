// The GPU side of ring attention's traffic: one NCCL ring step (every rank sends a batch of
// compressed pages to the next GPU and receives one from the previous) for batch sizes from 1 MiB
// to 1 GiB, and the all-gather of decode's partial attention states (32 query heads, head_dim 128,
// out and lse) with their merge. Run as `mpirun -np P bench_ring_nccl` with one GPU per rank.
// Peer in the same run: a cudaMemcpyPeer of the same bytes from this GPU to the next one (the
// link's copy bandwidth, no NCCL). Times are the slowest rank's medians of 20 after a warm-up.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include "comm/nccl/nccl_communicator.hpp"
#include "kernels/cuda_check.hpp"
#include "kernels/merge_states_gpu.hpp"

namespace ringkv {
namespace {

double slowest(double mine) {
  const auto all = Communicator::world().all_gather_bytes({reinterpret_cast<const uint8_t*>(&mine), sizeof mine}, "bench: max");
  double m = mine;
  for (const auto& b : all) {
    double v;
    std::memcpy(&v, b.data(), sizeof v);
    m = std::max(m, v);
  }
  return m;
}

// Median wall time of f() + synchronize over 20 runs, every rank starting together.
template <class F>
double median_ms(NcclCommunicator& nccl, F&& f) {
  std::vector<double> t;
  for (int i = 0; i < 21; ++i) {
    Communicator::world().barrier("bench: start");
    const auto start = std::chrono::steady_clock::now();
    f();
    nccl.synchronize("bench");
    if (i > 0) t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  return slowest(t[t.size() / 2]);
}

}  // namespace
}  // namespace ringkv

int main() {
  using namespace ringkv;
  try {
    Communicator& mpi = Communicator::world();
    const int device = bind_rank_to_gpu(mpi);
    NcclCommunicator nccl(mpi);
    const int P = nccl.size(), next_device = (device + 1) % std::max(cuda_device_count(), 1);
    int can_access = 0;
    if (next_device != device) RINGKV_CHECK_CUDA(cudaDeviceCanAccessPeer(&can_access, device, next_device));
    if (can_access) cudaDeviceEnablePeerAccess(next_device, 0);
    if (mpi.rank() == 0)
      std::printf("NCCL ring step, %d rank(s), one GPU each; peer: cudaMemcpyPeer GPU %d -> GPU %d in the same run\n"
                  "%12s %12s %14s %14s %8s\n",
                  P, device, next_device, "batch MiB", "ring ms", "ring GB/s/GPU", "peer GB/s", "ratio");
    for (size_t mib : {1, 8, 64, 256, 1024}) {
      const size_t bytes = mib << 20;
      DeviceBuffer<uint8_t> send(bytes), recv(bytes);
      RINGKV_CHECK_CUDA(cudaMemset(send.data(), 1, bytes));
      nccl.after(nullptr);
      const double ring_ms = median_ms(nccl, [&] { nccl.ring_exchange(send.data(), bytes, recv.data(), bytes, "bench ring"); });
      double peer_ms = 0;
      if (can_access) {
        RINGKV_CHECK_CUDA(cudaSetDevice(next_device));
        DeviceBuffer<uint8_t> remote(bytes);
        RINGKV_CHECK_CUDA(cudaSetDevice(device));
        peer_ms = median_ms(nccl, [&] {
          RINGKV_CHECK_CUDA(cudaMemcpyPeerAsync(remote.data(), next_device, send.data(), device, bytes, nccl.stream()));
        });
      }
      if (mpi.rank() == 0)
        std::printf("%12zu %12.3f %14.1f %14.1f %8.2f\n", mib, ring_ms, bytes / ring_ms / 1e6,
                    peer_ms > 0 ? bytes / peer_ms / 1e6 : 0.0, peer_ms > 0 ? peer_ms / ring_ms : 0.0);
    }
    // Decode: every rank's partial states of one token's 32 query heads per layer, gathered and merged.
    const int queries = 32, d = 128;
    DeviceBuffer<float> out(static_cast<size_t>(queries) * d), lse(queries), all_out(out.size() * P), all_lse(lse.size() * P);
    DeviceBuffer<float> merged(out.size()), merged_lse(lse.size());
    RINGKV_CHECK_CUDA(cudaMemset(out.data(), 0, out.size() * 4));
    RINGKV_CHECK_CUDA(cudaMemset(lse.data(), 0, lse.size() * 4));
    nccl.after(nullptr);
    constexpr int kLayers = 100;  // back to back, as the layers of decode steps run
    const double gather_ms = median_ms(nccl, [&] {
      for (int layer = 0; layer < kLayers; ++layer) {
        nccl.all_gather(out.data(), all_out.data(), out.size() * 4, "bench gather");
        nccl.all_gather(lse.data(), all_lse.data(), lse.size() * 4, "bench gather");
        merge_states_gpu(P, queries, d, all_out.data(), all_lse.data(), merged.data(), merged_lse.data(), nccl.stream());
      }
    });
    if (mpi.rank() == 0)
      std::printf("decode state all-gather + merge (32 heads x 128, %d ranks): %.1f us per layer (%d layers back to back)\n",
                  P, gather_ms * 1e3 / kLayers, kLayers);
    return 0;
  } catch (const std::exception& e) {
    return abort_all(e.what());
  }
}
