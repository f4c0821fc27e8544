#!/usr/bin/env bash
# `ringkv analyze` split over two MPI ranks prints the same table as one process.
set -euo pipefail
ringkv=$1
mpirun=${2:-mpirun}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export OMP_WAIT_POLICY=PASSIVE
flags=(--oversubscribe -x OMP_WAIT_POLICY)
[ "$(id -u)" = 0 ] && flags+=(--allow-run-as-root)
args=(analyze --tokens 700 --layers 2 --kv-heads 2 --head-dim 64 --page-size 64
      --kv int:bits=2 --kv "kvquant:bits=3,outliers=0.01,sink=1" --kv cq:channels=4,bits=6
      --kv rvq:depth=2,codes=32,group=8)
"$ringkv" "${args[@]}" --csv "$dir/one.csv" > "$dir/one.txt"
"$mpirun" "${flags[@]}" -np 2 "$ringkv" "${args[@]}" --csv "$dir/two.csv" > "$dir/two.txt"
# Calibration times differ between runs; every other column must agree.
strip() { cut -d, -f1-7 "$1"; }
if ! diff <(strip "$dir/one.csv") <(strip "$dir/two.csv"); then
  echo "FAIL: two ranks disagree with one"; exit 1
fi
grep -q "2 rank(s)" "$dir/two.txt" || { echo "FAIL: the two-rank run did not report 2 ranks"; cat "$dir/two.txt"; exit 1; }
echo "two ranks match one: $(wc -l < "$dir/one.csv") CSV lines"
