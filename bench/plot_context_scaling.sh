#!/usr/bin/env bash
# Draws the context-scaling plot (prefill tokens/s against context, one line per rank count and
# codec) from the CSV of bench_context_scaling or generate_gpu.sh (context in column 3, prefill
# tokens/s in column 5), with gnuplot.
# usage: bench/plot_context_scaling.sh CSV PNG [TITLE]
set -euo pipefail
csv=${1:?usage: bench/plot_context_scaling.sh CSV PNG [TITLE]} plot=${2:?usage: bench/plot_context_scaling.sh CSV PNG [TITLE]}
title=${3:-}
command -v gnuplot >/dev/null || { echo "gnuplot not installed: no plot drawn (the CSV is $csv)"; exit 0; }
# One data block per (ranks, codec) series, so that each is one line whatever the CSV's row order.
series=$(python3 - "$csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
keys = list(dict.fromkeys((r["ranks"], r["codec"]) for r in rows))
cols = list(rows[0].keys()) if rows else []
for i, (p, c) in enumerate(keys):
    print(f"$s{i} << EOD")
    for r in sorted((r for r in rows if (r["ranks"], r["codec"]) == (p, c)), key=lambda r: int(r["context"])):
        print(r["context"], r[cols[4]])
    print("EOD")
print("plot " + ", ".join(f"$s{i} using 1:2 with linespoints title '{c}, P={p}'" for i, (p, c) in enumerate(keys)))
PY
)
gnuplot <<GP
set terminal pngcairo size 900,600 noenhanced
set output '$plot'
set logscale xy 2
set xlabel 'context (tokens)'
set ylabel 'prefill tokens/s'
set title 'RingKV prefill scaling: $title'
set key outside right
$series
GP
echo "plot: $plot"
