// Context-length scaling of sequence parallelism on the CPU backend: run under `mpirun -np P`.
// For a LLaMA-shaped model with random weights, each context is prefilled with ring attention
// over the ranks' compressed shards, then decoded for a few steps. Prints, per codec and context:
// prefill time and tokens/s, decode step latency, KV memory per rank, ring traffic per layer, and
// the share of that traffic hidden under compute (1 - time waited on ring steps / time the same
// bytes take in a blocking ring step, measured at the start of the run). Appends rows to a CSV.
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "comm/communicator.hpp"
#include "kernels/error.hpp"
#include "runtime/distributed_sequence.hpp"
#include "runtime/random_model.hpp"

namespace ringkv {
namespace {

struct Options {
  std::vector<int> contexts = {8192, 16384, 32768};
  std::vector<std::string> specs = {"bf16", "int:bits=2"};
  ModelConfig model;
  int chunk = 2048, decode_steps = 8, page = 128;
  std::string csv;
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ';');) out.push_back(item);
  return out;
}

Options parse(int argc, char** argv) {
  Options o;
  o.model.hidden_size = 512, o.model.intermediate_size = 1536, o.model.layers = 4, o.model.heads = 8, o.model.kv_heads = 2;
  o.model.head_dim = 64, o.model.vocab_size = 256, o.model.max_position_embeddings = 1 << 24, o.model.rope_theta = 500000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--contexts") {
      o.contexts.clear();
      std::stringstream in(value);
      for (std::string c; std::getline(in, c, ',');) o.contexts.push_back(std::stoi(c));
    } else if (key == "--kv") {
      o.specs = split(value);  // ';'-separated: specs contain commas
    } else if (key == "--layers") {
      o.model.layers = std::stoi(value);
    } else if (key == "--chunk") {
      o.chunk = std::stoi(value);
    } else if (key == "--decode-steps") {
      o.decode_steps = std::stoi(value);
    } else if (key == "--csv") {
      o.csv = value;
    } else {
      throw Error("unknown option " + key +
                  " (options: --contexts N,N --kv 'SPEC;SPEC' --layers L --chunk T --decode-steps S --csv FILE)");
    }
  }
  return o;
}

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// The largest of every rank's value.
double max_over_ranks(double mine) {
  const auto all = Communicator::world().all_gather_bytes({reinterpret_cast<const uint8_t*>(&mine), sizeof mine}, "bench: max");
  double m = mine;
  for (const auto& b : all) {
    double v;
    std::memcpy(&v, b.data(), sizeof v);
    m = std::max(m, v);
  }
  return m;
}

// Seconds per byte of a blocking ring step of `bytes` (median of 5).
double ring_seconds_per_byte(size_t bytes) {
  Communicator& comm = Communicator::world();
  std::vector<uint8_t> payload(bytes, 1);
  std::vector<double> t;
  for (int i = 0; i < 6; ++i) {
    comm.barrier("bench: ring timing");
    const double start = now();
    payload = comm.ring_exchange_bytes(payload, "bench: ring timing");
    t.push_back(max_over_ranks(now() - start));
  }
  std::sort(t.begin() + 1, t.end());
  return t[3] / static_cast<double>(bytes);
}

}  // namespace
}  // namespace ringkv

int main(int argc, char** argv) {
  using namespace ringkv;
  try {
    Communicator& comm = Communicator::world();
    const Options o = parse(argc, argv);
    const int P = comm.size(), rank = comm.rank();
    std::string dir = std::filesystem::temp_directory_path().string() + "/ringkv_bench_model_" + std::to_string(::getpid());
    std::vector<uint8_t> name(dir.begin(), dir.end());
    comm.broadcast_bytes(name, 0, "bench: model folder");
    dir.assign(name.begin(), name.end());
    if (rank == 0) write_random_model(dir, o.model, DType::BF16, 1);
    comm.barrier("bench: model written");
    const auto weights = ModelWeights::load(dir);
    comm.barrier("bench: model read");
    if (rank == 0) std::filesystem::remove_all(dir);
    const double ring_s_per_byte = P > 1 ? ring_seconds_per_byte(size_t{8} << 20) : 0;
    const ModelConfig& c = o.model;
    if (rank == 0) {
      std::printf("context scaling, CPU backend, %d rank(s) x %d OpenMP threads; model: %d layers, hidden %d, %d/%d heads, "
                  "head_dim %d (random weights); page %d, prefill chunk %d tokens per rank\n",
                  P, omp_get_max_threads(), c.layers, c.hidden_size, c.heads, c.kv_heads, c.head_dim, o.page, o.chunk);
      if (P > 1) std::printf("blocking ring step: %.2f GB/s per rank\n", 1e-9 / ring_s_per_byte);
      std::printf("%-22s %9s %10s %12s %10s %12s %12s %8s\n", "codec", "context", "prefill s", "prefill t/s", "decode ms",
                  "KV MiB/rank", "ring MiB/lay", "hidden");
    }
    FILE* csv = nullptr;
    if (rank == 0 && !o.csv.empty()) {
      const bool fresh = !std::filesystem::exists(o.csv);
      csv = std::fopen(o.csv.c_str(), "a");
      RINGKV_REQUIRE(csv, "cannot write " + o.csv);
      if (fresh)
        std::fprintf(csv, "ranks,codec,context,prefill_s,prefill_tokens_per_s,decode_ms,kv_mib_per_rank,ring_mib_per_layer,hidden_share\n");
    }
    for (const std::string& spec_text : o.specs)
      for (int context : o.contexts) {
        const Transformer model(*weights, static_cast<size_t>(context) + o.decode_steps);
        KVShard kv(model.shard_config(KVSpec::parse(spec_text), o.page, SIZE_MAX), nullptr);
        DistributedSequence sequence(model, kv, &comm);
        std::mt19937 rng(7);
        std::vector<int32_t> tokens(context);
        for (int32_t& t : tokens) t = static_cast<int32_t>(rng() % c.vocab_size);
        std::vector<float> logits;
        comm.barrier("bench: start prefill");
        double start = now();
        sequence.prefill(tokens, o.chunk, logits, false);
        const double prefill_s = max_over_ranks(now() - start);
        comm.barrier("bench: start decode");
        start = now();
        for (int i = 0; i < o.decode_steps; ++i) sequence.decode(static_cast<int32_t>(i % c.vocab_size), logits);
        const double decode_ms = max_over_ranks(now() - start) * 1e3 / std::max(o.decode_steps, 1);
        const double kv_mib = max_over_ranks(static_cast<double>(kv.stats().total()) / (1 << 20));
        const double ring_bytes = static_cast<double>(sequence.ring_bytes_sent());
        const double hidden = P > 1 && ring_bytes > 0
                                  ? std::clamp(1.0 - sequence.ring_wait_seconds() / (ring_bytes * ring_s_per_byte), 0.0, 1.0)
                                  : 1.0;
        const double worst_hidden = -max_over_ranks(-hidden);
        const double ring_mib_layer = max_over_ranks(ring_bytes / (1 << 20) / c.layers);
        if (rank == 0) {
          std::printf("%-22s %9d %10.2f %12.0f %10.2f %12.1f %12.2f %7.0f%%\n", spec_text.c_str(), context, prefill_s,
                      context / prefill_s, decode_ms, kv_mib, ring_mib_layer, 100 * worst_hidden);
          std::fflush(stdout);
          if (csv)
            std::fprintf(csv, "%d,\"%s\",%d,%.4f,%.1f,%.3f,%.2f,%.3f,%.3f\n", P, spec_text.c_str(), context, prefill_s,
                         context / prefill_s, decode_ms, kv_mib, ring_mib_layer, worst_hidden);
        }
      }
    if (csv) std::fclose(csv);
    return 0;
  } catch (const std::exception& e) {
    return abort_all(e.what());
  }
}
