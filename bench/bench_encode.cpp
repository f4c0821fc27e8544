// GPU page encoding with the INT codec: GB/s of fp32 keys or values read against the device copy
// peak measured in this run (prefill must encode as fast as it produces keys and values).
#include <cstdio>
#include <vector>

#include "bench/gpu_timing.hpp"
#include "kernels/decode_attention_gpu.hpp"
#include "kvstore/codec.hpp"

namespace ringkv {

int run() {
  if (cuda_device_count() == 0) {
    std::puts("bench_encode: no CUDA device");
    return 0;
  }
  constexpr int kDim = 128, kPage = 128, kPages = 8192;  // 1M tokens of one KV head, 512 MiB of fp32
  cudaDeviceProp prop{};
  RINGKV_CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  const double peak = copy_peak_gbs();
  std::printf("Page encoding, %d pages of %d tokens x head_dim %d (fp32 in); %s, copy peak %.0f GB/s (read + write)\n",
              kPages, kPage, kDim, prop.name, peak);
  std::printf("%-12s %-6s %10s %12s %12s %8s\n", "codec", "role", "time ms", "in GB/s", "out GB/s", "of peak");
  std::vector<float> host(size_t(kPages) * kPage * kDim);
  uint64_t state = 7;
  for (float& x : host) x = next_uniform(state);
  DeviceBuffer<float> rows(host.size());
  rows.upload(host.data());
  for (int bits : {1, 2, 3, 4}) {
    const CodecSpec spec = CodecSpec::parse("int:bits=" + std::to_string(bits));
    for (bool keys : {true, false}) {
      const auto codec = make_codec(spec, keys ? Role::Key : Role::Value, {kDim, kPage, 0, 0, nullptr});
      const size_t page_bytes = codec->encoded_bytes(kPage, 0);
      DeviceBuffer<uint8_t> out(size_t(kPages) * page_bytes);
      std::vector<uint8_t*> ptrs(kPages);
      for (int p = 0; p < kPages; ++p) ptrs[p] = out.data() + size_t(p) * page_bytes;
      DeviceBuffer<uint8_t*> d_ptrs(kPages);
      d_ptrs.upload(ptrs.data());
      const double ms = median_ms([&] { encode_int_pages_gpu(rows.data(), kPages, bits, keys, d_ptrs.data(), nullptr); }, 20);
      const double in = host.size() * 4.0 / (ms * 1e-3) / 1e9, written = kPages * double(page_bytes) / (ms * 1e-3) / 1e9;
      std::printf("%-12s %-6s %10.4f %12.0f %12.0f %7.1f%%\n", spec.text().c_str(), keys ? "keys" : "values", ms, in, written,
                  100.0 * (in + written) / peak);
    }
  }
  return 0;
}

}  // namespace ringkv

int main() {
  try {
    return ringkv::run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_encode: %s\n", e.what());
    return 1;
  }
}
