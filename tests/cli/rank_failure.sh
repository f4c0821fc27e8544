#!/usr/bin/env bash
# A rank that dies mid-run (killed with SIGKILL, so it says nothing) takes the whole job down
# within a bounded time: no rank is left waiting in a collective or a ring step, and the launcher
# names the rank. COMMAND: perplexity (windows split over ranks) or generate (the KV cache spread
# over the ranks, killed during the ring-attention prefill).
set -uo pipefail
ringkv=$1 mpirun=$2 command=${3:-perplexity}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$ringkv" init-model -o "$dir/model" --layers 2 --hidden 64 --intermediate 128 --heads 2 --kv-heads 1 --head-dim 32 >/dev/null ||
  { echo "init-model failed"; exit 1; }
for i in $(seq 1 4000); do echo "line $i of a long text that keeps every rank busy for a while"; done > "$dir/text.txt"
flags=(--oversubscribe -x OMP_WAIT_POLICY=PASSIVE -x OMP_NUM_THREADS=1 -x ASAN_OPTIONS)
[ "$(id -u)" = 0 ] && flags+=(--allow-run-as-root)
if [ "$command" = generate ]; then
  args=(--prompt-file "$dir/text.txt" --kv int:bits=2 --max-new-tokens 8)
else
  args=(--text "$dir/text.txt" --window 256 --kv bf16 --kv int:bits=2)
fi
"$mpirun" "${flags[@]}" -np 3 "$ringkv" "$command" --model "$dir/model" "${args[@]}" > "$dir/log" 2>&1 &
job=$!
victim=""
for _ in $(seq 1 100); do  # wait until the three ranks run
  ranks=$(pgrep -P "$job" -f "ringkv $command" | wc -l)
  [ "$ranks" -ge 3 ] && { sleep 2; victim=$(pgrep -P "$job" -f "ringkv $command" | sed -n 2p); break; }
  sleep 0.2
done
[ -n "$victim" ] || { echo "FAIL: the three ranks did not start"; cat "$dir/log"; kill "$job"; exit 1; }
start=$(date +%s)
kill -9 "$victim"
( sleep 60; kill -9 "$job" 2>/dev/null ) >/dev/null 2>&1 &  # a hang fails the test rather than blocking it
watchdog=$!
wait "$job"; status=$?
elapsed=$(( $(date +%s) - start ))
pkill -P "$watchdog" 2>/dev/null; kill "$watchdog" 2>/dev/null
left=$(pgrep -P "$job" | wc -l)
echo "killed rank process $victim; the job ended after ${elapsed}s with status $status; $left processes left"
tail -5 "$dir/log"
[ "$status" -ne 0 ] && [ "$elapsed" -lt 60 ] && [ "$left" -eq 0 ] && grep -qi "signal 9\|killed\|aborted" "$dir/log" ||
  { echo "FAIL: the job did not end cleanly after losing a rank"; exit 1; }
echo "all ranks ended after one was killed"
