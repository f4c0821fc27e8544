#!/usr/bin/env bash
# Context-length scaling of sequence parallelism on CPU ranks: runs bench_context_scaling on 1, 2,
# 4, ... ranks, every rank with the same OpenMP threads (CORES / largest P - 1, leaving a core for
# its ring thread), so that P ranks have P times the cores of one (strong scaling); writes
# one CSV, prints the strong-scaling efficiency at the longest context, and draws the scaling plot
# (prefill tokens/s against context, one line per rank count and codec) when gnuplot is installed.
# usage: bench/context_scaling.sh BUILD_DIR OUT_DIR [RANKS] [CONTEXTS] [SPECS]
set -euo pipefail
build=${1:?usage: bench/context_scaling.sh BUILD_DIR OUT_DIR [RANKS] [CONTEXTS] [SPECS]}
out=${2:?usage: bench/context_scaling.sh BUILD_DIR OUT_DIR [RANKS] [CONTEXTS] [SPECS]}
ranks=${3:-1,2,4,8}
contexts=${4:-8192,16384,32768}
specs=${5:-bf16;int:bits=2}
cores=$(nproc)
mkdir -p "$out"
csv=$out/context_scaling.csv
rm -f "$csv"
flags=(--oversubscribe --bind-to none -x OMP_WAIT_POLICY=PASSIVE)
[ "$(id -u)" = 0 ] && flags+=(--allow-run-as-root)
most=$(tr ',' '\n' <<<"$ranks" | sort -n | tail -1)
threads=$(( cores / most - 1 )); [ "$threads" -lt 1 ] && threads=1
for p in ${ranks//,/ }; do
  mpirun "${flags[@]}" -x OMP_NUM_THREADS=$threads -np "$p" "$build/bench/bench_context_scaling" --contexts "$contexts" \
    --kv "$specs" --csv "$csv"
done
# Strong scaling: prefill time on 1 rank / (P x prefill time on P ranks), per codec at the longest context.
python3 - "$csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
longest = max(int(r["context"]) for r in rows)
print(f"strong scaling of prefill at {longest} tokens (time on 1 rank / (P x time on P ranks)):")
for codec in dict.fromkeys(r["codec"] for r in rows):
    at = {int(r["ranks"]): float(r["prefill_s"]) for r in rows if r["codec"] == codec and int(r["context"]) == longest}
    if 1 in at:
        print(f"  {codec:20s} " + "  ".join(f"P={p}: {at[1] / (p * t):.0%}" for p, t in sorted(at.items())))
PY
"$(dirname "$0")/plot_context_scaling.sh" "$csv" "$out/context_scaling.png" "CPU ranks, $(basename "$build"), $cores cores"
