#!/usr/bin/env bash
# On a GPU machine: PyTorch SDPA's causal prefill timings and the bf16 GEMM peak, then
# bench_prefill_attention with them as the peers.
# usage: bench/prefill_attention.sh BUILD_DIR [CONTEXTS]
set -euo pipefail
build=${1:?usage: bench/prefill_attention.sh BUILD_DIR [CONTEXTS]}
contexts=${2:-16384,65536}
python3 "$(dirname "$0")/sdpa_prefill.py" --contexts "$contexts" > "$build/sdpa_prefill.txt"
"$build/bench/bench_prefill_attention" --sdpa "$build/sdpa_prefill.txt" --contexts "$contexts"
