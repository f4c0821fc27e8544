#!/usr/bin/env bash
# On a GPU machine: PyTorch SDPA's decode timings, then bench_decode_attention with them as the peer.
# usage: bench/decode_attention.sh BUILD_DIR [CONTEXTS] [BATCHES] [CODECS]   (CODECS: bf16,int,cq,kvquant,rvq)
set -euo pipefail
build=${1:?usage: bench/decode_attention.sh BUILD_DIR [CONTEXTS] [BATCHES] [CODECS]}
contexts=${2:-32768,131072,1048576,4194304}
batches=${3:-1,8}
codecs=${4:-bf16,int,cq,kvquant,rvq}
python3 "$(dirname "$0")/sdpa_decode.py" --contexts "$contexts" --batches "$batches" > "$build/sdpa_decode.txt"
"$build/bench/bench_decode_attention" --sdpa "$build/sdpa_decode.txt" --contexts "$contexts" --batches "$batches" --codecs "$codecs"
