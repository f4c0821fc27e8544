// Causal prefill attention on the GPU (one sequence, Llama-3-8B shape: 32 query heads, 8 KV heads,
// head_dim 128, bf16): time and TFLOP/s (causal: 2 products x 2 flops x N^2/2 x 128 x 32) next to
// the bf16 GEMM peak and PyTorch SDPA (cuDNN, flash) measured in the same run by sdpa_prefill.py.
// usage: bench_prefill_attention --sdpa FILE [--contexts 16384,65536]
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "bench/gpu_timing.hpp"
#include "kernels/prefill_attention_gpu.hpp"

int main(int argc, char** argv) {
  using namespace ringkv;
  try {
    std::string sdpa_path, contexts_text = "16384,65536";
    for (int i = 1; i + 1 < argc; i += 2) {
      const std::string key = argv[i];
      if (key == "--sdpa") sdpa_path = argv[i + 1];
      else if (key == "--contexts") contexts_text = argv[i + 1];
      else throw Error("unknown option " + key + " (--sdpa FILE --contexts N,N)");
    }
    double gemm_tflops = 0;
    std::map<std::pair<int, std::string>, double> sdpa_ms;
    if (!sdpa_path.empty()) {
      std::ifstream in(sdpa_path);
      RINGKV_REQUIRE(in.good(), "cannot read " + sdpa_path);
      for (std::string line; std::getline(in, line);) {
        std::istringstream f(line);
        std::string a, b;
        double ms = 0;
        if (line.rfind("gemm_tflops", 0) == 0) f >> a >> gemm_tflops;
        else if (f >> a >> b >> ms) sdpa_ms[{std::stoi(a), b}] = ms;
      }
    }
    std::printf("causal prefill attention, 32/8 heads, head_dim 128, bf16; bf16 GEMM peak %.0f TFLOP/s (torch, same run)\n",
                gemm_tflops);
    std::printf("%9s %10s %9s %8s %12s %12s %12s %12s\n", "context", "ringkv ms", "TFLOP/s", "of peak", "cuDNN ms",
                "ringkv/cuDNN", "flash ms", "ringkv/flash");
    std::stringstream list(contexts_text);
    for (std::string item; std::getline(list, item, ',');) {
      const int n = std::stoi(item);
      PrefillShape s{n, n, 0, 32, 8, 128, 0.08838834764831845f};
      const size_t q_elems = static_cast<size_t>(n) * 32 * 128, kv_elems = static_cast<size_t>(n) * 8 * 128;
      DeviceBuffer<uint16_t> q(q_elems), k(kv_elems), v(kv_elems);
      DeviceBuffer<float> out(q_elems), lse(static_cast<size_t>(n) * 32);
      q.poison(0x3c), k.poison(0x3b), v.poison(0x3c);  // small finite bf16 values
      const double ms = median_ms([&] { prefill_attention_gpu(s, q.data(), k.data(), v.data(), out.data(), lse.data(), nullptr); }, 5);
      const double flops = 4.0 * n * (n / 2.0) * 128 * 32, tflops = flops / (ms * 1e-3) / 1e12;
      const double cudnn = sdpa_ms.count({n, "cudnn"}) ? sdpa_ms[{n, "cudnn"}] : 0, flash = sdpa_ms.count({n, "flash"}) ? sdpa_ms[{n, "flash"}] : 0;
      std::printf("%9d %10.2f %9.1f %7.0f%% %12.2f %11.0f%% %12.2f %11.0f%%\n", n, ms, tflops,
                  gemm_tflops > 0 ? 100 * tflops / gemm_tflops : 0.0, cudnn, cudnn > 0 ? 100 * cudnn / ms : 0.0, flash,
                  flash > 0 ? 100 * flash / ms : 0.0);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_prefill_attention: %s\n", e.what());
    return 1;
  }
}
