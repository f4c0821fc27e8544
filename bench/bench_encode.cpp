// GPU page encoding with the INT, CQ, KVQuant and RVQ codecs: GB/s of fp32 keys or values read against
// the device copy peak measured in this run (prefill must encode as fast as it produces keys and
// values). The searching codecs (CQ, RVQ) also against the most their search could read at the
// fp32 FMA rate measured in this run: each element costs one FMA per centroid it is compared with.
#include <cstdio>
#include <functional>
#include <vector>

#include "bench/bench_tables.hpp"
#include "bench/fma_peak.hpp"
#include "bench/gpu_timing.hpp"
#include "kernels/coupled_pages_gpu.hpp"
#include "kernels/decode_attention_gpu.hpp"
#include "kernels/kvquant_pages_gpu.hpp"
#include "kernels/residual_pages_gpu.hpp"
#include "kernels/rope.hpp"
#include "kvstore/calibration.hpp"
#include "kvstore/codec.hpp"
#include "kvstore/codec_kvquant.hpp"
#include "kvstore/codec_residual.hpp"

namespace ringkv {

int run() {
  if (cuda_device_count() == 0) {
    std::puts("bench_encode: no CUDA device");
    return 0;
  }
  constexpr int kDim = 128, kPage = 128, kPages = 8192;  // 1M tokens of one KV head, 512 MiB of fp32
  cudaDeviceProp prop{};
  RINGKV_CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  const double peak = copy_peak_gbs(), fma_per_second = fp32_fma_peak_tflops() * 1e12 / 2;
  std::printf("Page encoding, %d pages of %d tokens x head_dim %d (fp32 in); %s, copy peak %.0f GB/s (read + write),\n"
              "fp32 FMA peak %.1f TFLOP/s; FMA ceiling: the input GB/s of a search at that peak\n",
              kPages, kPage, kDim, prop.name, peak, fma_per_second * 2e-12);
  std::printf("%-12s %-6s %10s %12s %12s %8s %12s %10s\n", "codec", "role", "time ms", "in GB/s", "out GB/s", "of peak",
              "FMA ceiling", "of ceiling");
  std::vector<float> host(size_t(kPages) * kPage * kDim);
  uint64_t state = 7;
  for (float& x : host) x = next_uniform(state);
  DeviceBuffer<float> rows(host.size());
  rows.upload(host.data());
  // One row: the spec's pages of both roles encoded by `encode(keys, page pointers)`; fmas: per
  // element, for the searching codecs (0: none).
  using Encode = std::function<void(bool, uint8_t* const*)>;
  auto bench = [&](const CodecSpec& spec, const Calibration* calibration, const Encode& encode, double fmas = 0) {
    for (bool keys : {true, false}) {
      const auto codec = make_codec(spec, keys ? Role::Key : Role::Value, {kDim, kPage, 0, 0, calibration});
      const size_t page_bytes = codec->encoded_bytes(kPage, kPage);  // a page past any sink tokens
      DeviceBuffer<uint8_t> out(size_t(kPages) * page_bytes);
      std::vector<uint8_t*> ptrs(kPages);
      for (int p = 0; p < kPages; ++p) ptrs[p] = out.data() + size_t(p) * page_bytes;
      DeviceBuffer<uint8_t*> d_ptrs(kPages);
      d_ptrs.upload(ptrs.data());
      const double ms = median_ms([&] { encode(keys, d_ptrs.data()); }, 20);
      const double in = host.size() * 4.0 / (ms * 1e-3) / 1e9, written = kPages * double(page_bytes) / (ms * 1e-3) / 1e9;
      std::printf("%-12s %-6s %10.4f %12.0f %12.0f %7.1f%%", spec.text().c_str(), keys ? "keys" : "values", ms, in, written,
                  100.0 * (in + written) / peak);
      const double ceiling = fmas > 0 ? fma_per_second / fmas * 4 / 1e9 : 0;  // 4 bytes read per element
      if (fmas > 0) std::printf(" %12.0f %9.1f%%", ceiling, 100.0 * in / ceiling);
      std::printf("\n");
    }
  };
  for (int bits : {1, 2, 3, 4})
    bench(CodecSpec::parse("int:bits=" + std::to_string(bits)), nullptr,
          [&](bool keys, uint8_t* const* pages) { encode_int_pages_gpu(rows.data(), kPages, bits, keys, pages, nullptr); });
  // CQ with random centroids (the search visits every centroid whatever they are).
  for (const char* text : {"cq:channels=8,bits=8", "cq:channels=4,bits=8", "cq:channels=2,bits=6"}) {
    const CodecSpec spec = CodecSpec::parse(text);
    const int channels = spec.get_int("channels", 8, 1, 64), bits = spec.get_int("bits", 8, 1, 16);
    const BenchTable centroids = random_table(spec, "centroids", {kDim / channels, int64_t{1} << bits, channels}, 777);
    const auto each = repeated_pointer(centroids.device.data(), kPages);
    bench(spec, &centroids.calibration, [&](bool, uint8_t* const* pages) {
      encode_coupled_pages_gpu({kPage, kDim, channels, bits}, rows.data(), kPages, each->data(), pages, nullptr);
    }, double(int64_t{1} << bits));
  }
  // KVQuant with uniform levels; keys turned back before RoPE first where the spec stores them so.
  const RopeTable rope = RopeTable::plain(kDim, 500000);
  DeviceBuffer<float> d_freq(rope.inv_freq.size());
  d_freq.upload(rope.inv_freq.data());
  for (const char* text : {"kvquant:bits=2,nuq=0", "kvquant:bits=2,nuq=0,outliers=0.01", "kvquant:bits=4,nuq=0,outliers=0.01"}) {
    const CodecSpec spec = CodecSpec::parse(text);
    const KVQuantParams p = KVQuantParams::from(spec);
    const std::vector<float> levels = KVQuantCodec(spec, Role::Key, CodecContext{kDim, kPage, 0, 0, nullptr}).levels();
    DeviceBuffer<float> d_levels(levels.size());
    d_levels.upload(levels.data());
    const auto one = repeated_pointer(d_levels.data(), 1);
    bench(spec, nullptr, [&](bool keys, uint8_t* const* pages) {
      encode_kvquant_pages_gpu({p.bits, p.outliers, p.sink, p.pre_rope}, keys, rows.data(), kPages, 1, kPage, one->data(),
                               d_freq.data(), pages, nullptr);
    });
  }
  // RVQ with random codebooks: every entry of every codebook is searched whatever they hold.
  for (const char* text : {"rvq:codes=256,depth=8,group=8", "rvq:codes=16,depth=4,group=8"}) {
    const CodecSpec spec = CodecSpec::parse(text);
    const ResidualParams p = ResidualParams::from(spec, kDim);
    const BenchTable books = random_table(spec, "codebooks", {p.depth, p.codes, p.group}, 99);
    const auto one = repeated_pointer(books.device.data(), 1);
    bench(spec, &books.calibration, [&](bool keys, uint8_t* const* pages) {
      encode_residual_pages_gpu({p.depth, p.codes, p.group, p.pre_rope}, keys, rows.data(), kPages, 1, kPage, one->data(),
                                d_freq.data(), pages, nullptr);
    }, double(p.depth) * p.codes);
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
