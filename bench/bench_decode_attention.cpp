// GPU decode attention over a bf16 cache and over compressed INT, CQ, KVQuant and RVQ pages at the Llama-3-8B attention
// shape (32 query heads, 8 KV heads, head_dim 128; one layer): time per step (median of CUDA-event timings after a
// warm-up), compressed GB/s read against the device copy peak measured in this run, and the
// speedup over PyTorch SDPA (bf16) on the same shapes when bench/sdpa_decode.py's timings are given.
//
// usage: bench_decode_attention [--sdpa FILE] [--contexts 32768,131072,...] [--batches 1,8]
//                               [--codecs bf16,int,cq,kvquant,rvq]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_tables.hpp"
#include "bench/gpu_timing.hpp"
#include "kernels/cuda_check.hpp"
#include "kernels/decode_attention_bf16_gpu.hpp"
#include "kernels/decode_attention_coupled_gpu.hpp"
#include "kernels/decode_attention_gpu.hpp"
#include "kernels/kvquant_pages_gpu.hpp"
#include "kernels/residual_pages_gpu.hpp"
#include "kernels/rope.hpp"
#include "kvstore/calibration.hpp"
#include "kvstore/codec.hpp"
#include "kvstore/codec_kvquant.hpp"
#include "kvstore/codec_residual.hpp"

namespace ringkv {
namespace {

constexpr int kDim = 128, kPage = 128, kKVHeads = 8, kQueriesPerKV = 4;

std::vector<long> parse_list(const std::string& text) {
  std::vector<long> v;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) v.push_back(std::stol(item));
  return v;
}

// "batch context backend ms" lines from bench/sdpa_decode.py.
std::map<std::pair<long, long>, std::map<std::string, double>> read_sdpa(const std::string& path) {
  std::map<std::pair<long, long>, std::map<std::string, double>> r;
  std::ifstream in(path);
  RINGKV_REQUIRE(in.good(), "cannot open SDPA timings " + path);
  long batch = 0, context = 0;
  std::string backend;
  double ms = 0;
  while (in >> batch >> context >> backend >> ms) r[{batch, context}][backend] = ms;
  return r;
}

}  // namespace

int run(int argc, char** argv) {
  std::vector<long> contexts = {32768, 131072, 1 << 20, 4 << 20}, batches = {1, 8};
  std::string sdpa_path, codecs = "bf16,int,cq,kvquant,rvq";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i];
    if (key == "--sdpa") sdpa_path = argv[i + 1];
    else if (key == "--contexts") contexts = parse_list(argv[i + 1]);
    else if (key == "--batches") batches = parse_list(argv[i + 1]);
    else if (key == "--codecs") codecs = argv[i + 1];
    else fail("unknown option " + key, __FILE__, __LINE__);
  }
  if (cuda_device_count() == 0) {
    std::puts("bench_decode_attention: no CUDA device");
    return 0;
  }
  const auto wanted = [&](const std::string& family) {
    return ("," + codecs + ",").find("," + family + ",") != std::string::npos;
  };
  const auto sdpa = sdpa_path.empty() ? decltype(read_sdpa("")){} : read_sdpa(sdpa_path);
  cudaDeviceProp prop{};
  RINGKV_CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  const double peak = copy_peak_gbs();
  std::printf("Decode attention, one layer: %d query heads, %d KV heads, head_dim %d, pages of %d tokens; %s, "
              "copy peak %.0f GB/s (read + write)\n",
              kKVHeads * kQueriesPerKV, kKVHeads, kDim, kPage, prop.name, peak);
  std::printf("%-12s %5s %9s %10s %12s %8s %11s %11s %9s %9s\n", "codec", "batch", "context", "time ms", "KV GB/s",
              "of peak", "SDPA cudnn", "SDPA flash", "vs cudnn", "vs flash");
  // One table row: the bytes the kernel reads, its time, and SDPA on the same shape.
  auto print_row = [&](const std::string& codec, long batch, long context, double ms, double bytes) {
    const double gbs = bytes / (ms * 1e-3) / 1e9;
    const auto it = sdpa.find({batch, context});
    auto peer = [&](const char* backend) {
      return it != sdpa.end() && it->second.count(backend) ? it->second.at(backend) : NAN;
    };
    const double cudnn = peer("cudnn"), flash = peer("flash");
    std::printf("%-12s %5ld %9ld %10.4f %12.0f %7.1f%% %11.4f %11.4f %8.2fx %8.2fx\n", codec.c_str(), batch, context, ms, gbs,
                100.0 * gbs / peak, cudnn, flash, cudnn / ms, flash / ms);
  };
  // The bf16 cache [context][kv_heads][head_dim] of one sequence (the kernel runs one sequence per launch).
  for (long context : wanted("bf16") ? contexts : std::vector<long>{}) {
    const size_t elements = static_cast<size_t>(context) * kKVHeads * kDim;
    size_t free_bytes = 0, total_bytes = 0;
    RINGKV_CHECK_CUDA(cudaMemGetInfo(&free_bytes, &total_bytes));
    if (4 * elements + (size_t{1} << 30) > free_bytes) {
      std::printf("%-12s %5d %9ld   skipped: needs %.1f GB of the %.1f GB free\n", "bf16", 1, context, 4.0 * elements / 1e9,
                  free_bytes / 1e9);
      continue;
    }
    DeviceBuffer<uint16_t> keys(elements), values(elements);
    RINGKV_CHECK_CUDA(cudaMemset(keys.data(), 0x3c, elements * 2));  // 0x3c3c: about 0.0115 in every element
    RINGKV_CHECK_CUDA(cudaMemset(values.data(), 0x3c, elements * 2));
    const DecodeShape shape{static_cast<int>(context), kKVHeads * kQueriesPerKV, kKVHeads, kDim, 0.088f};
    const std::vector<float> q(size_t(shape.heads) * kDim, 0.01f);
    DeviceBuffer<float> d_q(q.size());
    d_q.upload(q.data());
    const int splits = decode_attention_bf16_splits(shape.n_keys, kKVHeads);
    DeviceBuffer<float> so(size_t(splits) * q.size()), sl(size_t(splits) * shape.heads), out(q.size()), lse(shape.heads);
    const double ms = median_ms(
        [&] {
          decode_attention_bf16_gpu(shape, d_q.data(), keys.data(), values.data(), splits, so.data(), sl.data(), out.data(),
                                    lse.data(), nullptr);
        },
        20);
    print_row("bf16", 1, context, ms, 4.0 * elements);
  }
  // Paged codecs: a few distinct pages encoded on the CPU, replicated on the device for every stream;
  // make_step(key pages, value pages, streams, pages per stream, queries) gives the launch to time.
  using Step = std::function<void()>;
  using StepMaker = std::function<Step(const uint8_t* const*, const uint8_t* const*, int, int, const float*)>;
  constexpr int kDistinctPages = 64;
  auto bench_pages = [&](const CodecSpec& spec, const Calibration* calibration, const StepMaker& make_step) {
    if (!wanted(spec.name())) return;
    const CodecContext ctx{kDim, kPage, 0, 0, calibration};
    const auto kc = make_codec(spec, Role::Key, ctx), vc = make_codec(spec, Role::Value, ctx);
    const size_t page_bytes = kc->encoded_bytes(kPage, 0), slot = (page_bytes + 15) / 16 * 16;
    std::vector<uint8_t> distinct(2 * kDistinctPages * slot);
    std::vector<float> rows(size_t(kPage) * kDim);
    uint64_t state = 12345;
    for (int p = 0; p < 2 * kDistinctPages; ++p) {
      for (float& x : rows) x = next_uniform(state) - 0.5f;
      (p < kDistinctPages ? *kc : *vc).encode(rows.data(), kPage, 0, distinct.data() + size_t(p) * slot);
    }
    for (long batch : batches)
      for (long context : contexts) {
        const int streams = static_cast<int>(batch) * kKVHeads, n_pages = static_cast<int>(context / kPage);
        const size_t pages_total = size_t(streams) * n_pages;
        size_t free_bytes = 0, total_bytes = 0;
        RINGKV_CHECK_CUDA(cudaMemGetInfo(&free_bytes, &total_bytes));
        if (2 * pages_total * slot + (size_t{1} << 30) > free_bytes) {
          std::printf("%-12s %5ld %9ld   skipped: needs %.1f GB of the %.1f GB free\n", spec.text().c_str(), batch, context,
                      2.0 * pages_total * slot / 1e9, free_bytes / 1e9);
          continue;
        }
        DeviceBuffer<uint8_t> pages(2 * pages_total * slot);
        DeviceBuffer<uint8_t> d_distinct(distinct.size());
        d_distinct.upload(distinct.data());
        for (size_t i = 0; i < 2 * pages_total; i += kDistinctPages) {
          const size_t count = std::min<size_t>(kDistinctPages, 2 * pages_total - i);
          const size_t from = (i < pages_total ? 0 : kDistinctPages) * slot;
          RINGKV_CHECK_CUDA(cudaMemcpy(pages.data() + i * slot, d_distinct.data() + from, count * slot, cudaMemcpyDeviceToDevice));
        }
        std::vector<const uint8_t*> kp(pages_total), vp(pages_total);
        for (size_t i = 0; i < pages_total; ++i) kp[i] = pages.data() + i * slot, vp[i] = pages.data() + (pages_total + i) * slot;
        DeviceBuffer<const uint8_t*> d_kp(pages_total), d_vp(pages_total);
        d_kp.upload(kp.data());
        d_vp.upload(vp.data());
        const std::vector<float> q(size_t(streams) * kQueriesPerKV * kDim, 0.01f);
        DeviceBuffer<float> d_q(q.size());
        d_q.upload(q.data());
        const double ms = median_ms(make_step(d_kp.data(), d_vp.data(), streams, n_pages, d_q.data()), 20);
        print_row(spec.text(), batch, context, ms, 2.0 * pages_total * page_bytes);
      }
  };
  // The partial states and the merged result of every stream's queries, for `splits` splits.
  struct Workspace {
    DeviceBuffer<float> split_out, split_lse, out, lse;
    Workspace(int splits, int streams)
        : split_out(size_t(splits) * streams * kQueriesPerKV * kDim), split_lse(size_t(splits) * streams * kQueriesPerKV),
          out(size_t(streams) * kQueriesPerKV * kDim), lse(size_t(streams) * kQueriesPerKV) {}
  };
  // The timed launch of a paged decode kernel, decode(view, queries, n_queries, scale, splits,
  // workspace..., stream), with its workspace and `keep` (tables the view points into) kept alive.
  auto timed_decode = [](auto decode, auto view, int splits, int streams, const float* q, std::shared_ptr<const void> keep) {
    auto w = std::make_shared<Workspace>(splits, streams);
    return Step([=] {
      decode(view, q, kQueriesPerKV, 0.088f, splits, w->split_out.data(), w->split_lse.data(), w->out.data(), w->lse.data(), nullptr);
      (void)keep;
    });
  };
  for (int bits : {1, 2, 3, 4})
    bench_pages(CodecSpec::parse("int:bits=" + std::to_string(bits)), nullptr,
                [&](const uint8_t* const* keys, const uint8_t* const* values, int streams, int n_pages, const float* q) {
                  const IntPagesGpu view{keys, values, streams, n_pages, bits};
                  return timed_decode(decode_attention_int_gpu, view, decode_attention_int_splits(n_pages, streams, bits), streams, q, nullptr);
                });
  // CQ at 1, 2, 3 and 4 bits per channel, with random centroids.
  for (const char* text : {"cq:channels=8,bits=8", "cq:channels=4,bits=8", "cq:channels=2,bits=6", "cq:channels=2,bits=8"}) {
    const CodecSpec spec = CodecSpec::parse(text);
    const int channels = spec.get_int("channels", 8, 1, 64), bits = spec.get_int("bits", 8, 1, 16);
    const BenchTable centroids = random_table(spec, "centroids", {kDim / channels, int64_t{1} << bits, channels}, 777);
    bench_pages(spec, &centroids.calibration,
                [&](const uint8_t* const* keys, const uint8_t* const* values, int streams, int n_pages, const float* q) {
                  const auto pointers = repeated_pointer(centroids.device.data(), streams);
                  const CoupledPagesGpu view{keys, values, pointers->data(), pointers->data(), streams, n_pages, kPage, kDim,
                                             channels, bits, channels, bits};
                  return timed_decode(decode_attention_coupled_gpu, view, decode_attention_coupled_splits(view), streams, q, pointers);
                });
  }
  // KVQuant: keys before RoPE (turned on the fly) or after, with and without 1% sparse outliers;
  // even levels (nuq=0, codes read as integers) and learned ones (read through tables of level
  // pairs: the speed does not depend on their values, so evenly spaced ones stand in).
  const RopeTable rope = RopeTable::plain(kDim, 500000);
  DeviceBuffer<float> d_freq(rope.inv_freq.size());
  d_freq.upload(rope.inv_freq.data());
  for (const char* text : {"kvquant:bits=1,nuq=0", "kvquant:bits=2,nuq=0", "kvquant:bits=2,nuq=0,outliers=0.01",
                           "kvquant:bits=2,nuq=0,prerope=0", "kvquant:bits=4,nuq=0", "kvquant:bits=1,outliers=0.01",
                           "kvquant:bits=2,outliers=0.01", "kvquant:bits=3,outliers=0.01", "kvquant:bits=4,outliers=0.01"}) {
    const CodecSpec spec = CodecSpec::parse(text);
    const KVQuantParams p = KVQuantParams::from(spec);
    std::vector<float> levels(size_t{1} << p.bits);
    for (size_t i = 0; i < levels.size(); ++i) levels[i] = -1.0f + 2.0f * float(i) / float(levels.size() - 1);
    Calibration calibration;
    for (Role role : {Role::Key, Role::Value})
      calibration.put(table_name(spec, 0, 0, role, "levels"), {{int64_t(levels.size())}, levels});
    DeviceBuffer<float> d_levels(levels.size());
    d_levels.upload(levels.data());
    bench_pages(spec, &calibration,
                [&](const uint8_t* const* keys, const uint8_t* const* values, int streams, int n_pages, const float* q) {
                  const auto pointers = repeated_pointer(d_levels.data(), streams);
                  const KVQuantPagesGpu view{{keys, values, d_freq.data(), streams, n_pages}, pointers->data(), pointers->data(),
                                             {p.bits, p.outliers, p.sink, p.pre_rope, !p.nuq}};
                  return timed_decode(decode_attention_kvquant_gpu, view, decode_attention_kvquant_splits(n_pages, streams, view.shape),
                                      streams, q, pointers);
                });
  }
  // RVQ with random codebooks: 1 and 0.5 bits per channel per codebook, 8 and 4 codebooks.
  for (const char* text : {"rvq:codes=256,depth=8,group=8", "rvq:codes=256,depth=4,group=8", "rvq:codes=16,depth=4,group=8"}) {
    const CodecSpec spec = CodecSpec::parse(text);
    const ResidualParams p = ResidualParams::from(spec, kDim);
    const BenchTable books = random_table(spec, "codebooks", {p.depth, p.codes, p.group}, 99);
    bench_pages(spec, &books.calibration,
                [&](const uint8_t* const* keys, const uint8_t* const* values, int streams, int n_pages, const float* q) {
                  const auto pointers = repeated_pointer(books.device.data(), streams);
                  const ResidualPagesGpu view{{keys, values, d_freq.data(), streams, n_pages}, pointers->data(), pointers->data(),
                                              {p.depth, p.codes, p.group, p.pre_rope}};
                  return timed_decode(decode_attention_residual_gpu, view, decode_attention_splits(n_pages, streams), streams, q,
                                      pointers);
                });
  }
  return 0;
}

}  // namespace ringkv

int main(int argc, char** argv) {
  try {
    return ringkv::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_decode_attention: %s\n", e.what());
    return 1;
  }
}
