// CPU backend throughput of every codec: page encoding (GB/s of fp32 input) and decode attention
// over compressed pages (GB/s of compressed bytes read), next to this machine's measured memory
// copy bandwidth. Median of repeated runs after a warm-up.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kvstore/partial_attention.hpp"

namespace ringkv {
namespace {

template <class F>
double median_seconds(F&& f, int repeats) {
  f();  // warm-up
  std::vector<double> t;
  for (int i = 0; i < repeats; ++i) {
    const auto a = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

double copy_bandwidth_gbs() {
  const size_t n = size_t{256} << 20;
  std::vector<char> a(n, 1), b(n, 0);
  const double s = median_seconds([&] { std::memcpy(b.data(), a.data(), n); }, 5);
  return 2.0 * n / s / 1e9;  // read + write
}

std::vector<float> rows(size_t n, int d, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(n * d);
  for (size_t i = 0; i < v.size(); ++i) v[i] = normal(rng) * (i % d == 3 ? 8.0f : 1.0f);
  return v;
}

}  // namespace
}  // namespace ringkv

int main(int argc, char** argv) {
  using namespace ringkv;
  const int tokens = argc > 1 ? std::atoi(argv[1]) : 65536;
  const int d = 128, page = 128, n_queries = 4;  // one KV head of a GQA group of 4 query heads
  const RopeTable rope = RopeTable::plain(d, 500000.0);
  const std::vector<float> train = rows(4096, d, 1), data = rows(tokens, d, 2), queries = rows(n_queries, d, 3);
  std::vector<int> pos(4096);
  for (int i = 0; i < 4096; ++i) pos[i] = i;
  const double peak = copy_bandwidth_gbs();
  std::printf("CPU codecs: one KV head, head_dim %d, %d tokens, %d queries (GQA), page %d; memcpy peak %.1f GB/s\n", d,
              tokens, n_queries, page, peak);
  std::printf("%-34s %8s %12s %10s %12s %12s %8s\n", "codec", "bits/el", "encode GB/s", "attn ms", "attn GB/s",
              "attn Mtok/s", "of peak");
  for (const char* text : {"bf16", "int:bits=4", "int:bits=2", "kvquant:bits=3,outliers=0.01,sink=1", "kvquant:bits=2",
                           "cq:channels=4,bits=8", "cq:channels=8,bits=8", "rvq:depth=8,codes=256,group=32"}) {
    const CodecSpec spec = CodecSpec::parse(text);
    Calibration cal;
    const CodecContext ctx{d, page, 0, 0, &cal};
    learn_codec_tables(spec, Role::Key, ctx, rope, {train.data(), pos.data(), nullptr, pos.size()}, cal);
    learn_codec_tables(spec, Role::Value, ctx, rope, {train.data(), pos.data(), nullptr, pos.size()}, cal);
    auto kc = make_codec(spec, Role::Key, ctx);
    auto vc = make_codec(spec, Role::Value, ctx);
    const int pages = tokens / page;
    std::vector<std::vector<uint8_t>> kb(pages), vb(pages);
    std::vector<PageView> kp(pages), vp(pages);
    size_t bytes = 0;
    for (int p = 0; p < pages; ++p) {
      kb[p].resize(kc->encoded_bytes(page, p * page));
      vb[p].resize(vc->encoded_bytes(page, p * page));
      kp[p] = {kb[p].data(), page, p * page};
      vp[p] = {vb[p].data(), page, p * page};
      bytes += kb[p].size() + vb[p].size();
    }
    const double enc = median_seconds(
        [&] {
#pragma omp parallel for
          for (int p = 0; p < pages; ++p) {
            kc->encode(data.data() + static_cast<size_t>(p) * page * d, page, p * page, kb[p].data());
            vc->encode(data.data() + static_cast<size_t>(p) * page * d, page, p * page, vb[p].data());
          }
        },
        3);
    const double att = median_seconds(
        [&] { partial_attention({kc.get(), vc.get(), kp, vp}, queries.data(), n_queries, rope, 0.088f); }, 7);
    const double bits = 8.0 * bytes / (2.0 * pages * page * d);
    std::printf("%-34s %8.3f %12.2f %10.3f %12.2f %12.2f %7.1f%%\n", text, bits,
                2.0 * pages * page * d * 4 / enc / 1e9, att * 1e3, bytes / att / 1e9, pages * page / att / 1e6,
                100.0 * bytes / att / 1e9 / peak);
  }
  return 0;
}
