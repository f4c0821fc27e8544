#!/usr/bin/env bash
# Draws the context-scaling plot (prefill tokens/s against context, one line per rank count and
# codec) from bench_context_scaling's CSV, with gnuplot.
# usage: bench/plot_context_scaling.sh CSV PNG [TITLE]
set -euo pipefail
csv=${1:?usage: bench/plot_context_scaling.sh CSV PNG [TITLE]} plot=${2:?usage: bench/plot_context_scaling.sh CSV PNG [TITLE]}
title=${3:-}
command -v gnuplot >/dev/null || { echo "gnuplot not installed: no plot drawn (the CSV is $csv)"; exit 0; }
series=$(python3 - "$csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
keys = list(dict.fromkeys((r["ranks"], r["codec"]) for r in rows))
print(", ".join(f"'{sys.argv[1]}' using 3:(strcol(1) eq '{p}' && strcol(2) eq '{c}' ? $5 : 1/0) "
                f"with linespoints title '{c}, P={p}'" for p, c in keys))
PY
)
gnuplot <<GP
set terminal pngcairo size 900,600 noenhanced
set output '$plot'
set datafile separator ','
set logscale xy 2
set xlabel 'context (tokens)'
set ylabel 'prefill tokens/s'
set title 'RingKV prefill scaling: $title'
set key outside right
plot $series
GP
echo "plot: $plot"
