#!/usr/bin/env bash
# Quality of every KV codec on a trained model, the papers' central measurement: reftiny-14m
# calibrated on the GCIDE calibration text, then perplexity on the King James New Testament in
# windows of 2048 tokens with the model attending over each codec's cache at every position, and
# the mean KL divergence of next-token distributions from a bf16 cache.
#
# usage: bench/quality.sh BUILD_DIR [WINDOWS] [RANKS]
#   WINDOWS: 2048-token windows evaluated (default 8; the text holds about 120); RANKS: MPI ranks
#   that share the windows (default 1). Models and texts come from $RINGKV_MODELS and
#   $RINGKV_DATA, else ../shared/models and ../shared/data next to the repository.
set -euo pipefail
build=${1:?usage: bench/quality.sh BUILD_DIR [WINDOWS] [RANKS]}
windows=${2:-8}
ranks=${3:-1}
root=$(cd "$(dirname "$0")/.." && pwd)
models=${RINGKV_MODELS:-$root/../shared/models}
data=${RINGKV_DATA:-$root/../shared/data}
model=$models/reftiny-14m
for f in "$model/config.json" "$data/gcide-calibration.txt" "$data/kjv-new-testament.txt"; do
  [[ -e $f ]] || { echo "bench/quality.sh: $f is missing (set RINGKV_MODELS / RINGKV_DATA)"; exit 1; }
done
ringkv=$build/launch/ringkv
mpirun=(mpirun --oversubscribe -np "$ranks" -x OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(( $(nproc) / ranks ))}" -x OMP_WAIT_POLICY=PASSIVE)
[[ $(id -u) == 0 ]] && mpirun+=(--allow-run-as-root)

# About 4, 3, 2 and 1 bits per element for each family.
specs=(
  bf16
  int:bits=4 int:bits=3 int:bits=2 int:bits=1
  kvquant:bits=4,outliers=0.01,sink=1 kvquant:bits=4
  kvquant:bits=3,outliers=0.01,sink=1 kvquant:bits=3
  kvquant:bits=2,outliers=0.01,sink=1,qnorm=1 kvquant:bits=2
  kvquant:bits=1,outliers=0.01,sink=1,qnorm=1 kvquant:bits=1
  cq:channels=2,bits=8 cq:channels=2,bits=6 cq:channels=4,bits=8 cq:channels=2,bits=4
  cq:channels=8,bits=8 cq:channels=4,bits=4
  rvq:depth=8,codes=256,group=16 rvq:depth=6,codes=256,group=16
  rvq:depth=8,codes=256,group=32 rvq:depth=4,codes=256,group=32
)
kv_args=()
for s in "${specs[@]}"; do kv_args+=(--kv "$s"); done

"$ringkv" calibrate --model "$model" --text "$data/gcide-calibration.txt" --tokens 32768 --window 2048 \
  "${kv_args[@]}" -o "$build/reftiny-14m.calib" --dump-kv "$build/reftiny-14m.kvdump"
"${mpirun[@]}" "$ringkv" perplexity --model "$model" --text "$data/kjv-new-testament.txt" --window 2048 \
  --max-windows "$windows" --calibration "$build/reftiny-14m.calib" "${kv_args[@]}" --csv "$build/quality.csv"
