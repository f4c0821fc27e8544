#!/usr/bin/env bash
# The model commands end to end on a small random model: init-model, tokenize, calibrate from the
# model, perplexity under several codecs (one and two MPI ranks agree), generate (greedy repeatable,
# same continuation from any prefill chunk size), and clear refusals of bad model input.
set -uo pipefail
ringkv=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
expect_error() {  # expect_error "words in the message" command...
  local words=$1; shift
  local out status
  out=$("$@" 2>&1); status=$?
  if [ $status -eq 0 ] || [ $status -ge 128 ] || ! grep -qi -- "$words" <<<"$out"; then
    fail "($status): $* -> $out"
  else
    echo "ok: refused: $(head -c 200 <<<"$out" | tr '\n' ' ')"
  fi
}
mpirun=(mpirun --oversubscribe -np 2 -x OMP_NUM_THREADS=1)
[ "$(id -u)" = 0 ] && mpirun+=(--allow-run-as-root)
export OMP_WAIT_POLICY=PASSIVE

model=$dir/model
"$ringkv" init-model -o "$model" --layers 2 --hidden 128 --intermediate 256 --heads 4 --kv-heads 2 --head-dim 32 >/dev/null ||
  { echo "init-model failed"; exit 1; }
text=$dir/text.txt
for i in $(seq 1 60); do echo "Line $i: the quick brown fox jumps over the lazy dog, and the dog sleeps." >> "$text"; done

ids=$("$ringkv" tokenize --model "$model" --prompt "Hi!")
[ "$ids" = "72 105 33" ] && echo "ok: tokenize" || fail "tokenize gave '$ids'"

specs=(--kv bf16 --kv int:bits=2 --kv kvquant:bits=2,outliers=0.01,sink=1 --kv cq:channels=4,bits=6 --kv rvq:depth=2,codes=16,group=8)
"$ringkv" calibrate --model "$model" --text "$text" --tokens 2048 --window 512 "${specs[@]}" -o "$dir/cal.rkv" \
  --dump-kv "$dir/kv.dump" >/dev/null || fail "calibrate --model"
"$ringkv" analyze --kv-dump "$dir/kv.dump" --kv int:bits=2 --kv cq:channels=4,bits=6 >/dev/null || fail "analyze on the model's KV dump"

one=$("$ringkv" perplexity --model "$model" --text "$text" --window 256 --max-windows 4 --calibration "$dir/cal.rkv" "${specs[@]}" --csv "$dir/one.csv")
echo "$one" | tail -6
"${mpirun[@]}" "$ringkv" perplexity --model "$model" --text "$text" --window 256 --max-windows 4 --calibration "$dir/cal.rkv" \
  "${specs[@]}" --csv "$dir/two.csv" >/dev/null || fail "perplexity on two ranks"
# The same windows on one or two ranks: identical perplexities (the time column differs).
if [ "$(cut -d, -f1-6 "$dir/one.csv")" = "$(cut -d, -f1-6 "$dir/two.csv")" ]; then echo "ok: two ranks match one"; else
  fail "perplexity differs between one and two ranks"; diff "$dir/one.csv" "$dir/two.csv"; fi
[ "$(wc -l < "$dir/one.csv")" = 6 ] || fail "perplexity CSV should have a header and 5 rows"

gen() { "$ringkv" generate --model "$model" --prompt "The quick brown fox" --max-new-tokens 24 --print-ids --ignore-eos "$@" 2>/dev/null; }
a=$(gen --kv kvquant:bits=2,outliers=0.01,sink=1 --calibration "$dir/cal.rkv" --chunk 4 --page-size 16)
b=$(gen --kv kvquant:bits=2,outliers=0.01,sink=1 --calibration "$dir/cal.rkv" --chunk 512 --page-size 16)
[ -n "$a" ] && [ "$a" = "$b" ] && echo "ok: generate is the same for any prefill chunk" || fail "generate: '$a' vs '$b'"
[ "$(wc -w <<<"$a")" = 24 ] || fail "generate should print 24 ids, printed '$a'"
c=$(gen --temperature 0.8 --top-p 0.9 --seed 5); d=$(gen --temperature 0.8 --top-p 0.9 --seed 5)
[ "$c" = "$d" ] && echo "ok: sampling is repeatable with a seed" || fail "sampling with one seed differs"

expect_error "needs learned tables" "$ringkv" generate --model "$model" --prompt hi --kv cq:channels=4,bits=6
expect_error "out of KV memory" "$ringkv" generate --model "$model" --prompt hi --kv bf16 --kv-memory-gb 0.00001
expect_error "tokens with KV codec 'bf16' needs [0-9.]* MiB of KV memory per rank on 1 rank(s); the budget is 0.20 MiB" "$ringkv" generate --model "$model" \
  --prompt-file "$text" --kv bf16 --kv-memory-gb 0.0002
expect_error "does not exist" "$ringkv" generate --model "$dir/missing" --prompt hi
expect_error "not in {cpu,gpu}\|cpu,gpu" "$ringkv" generate --model "$model" --prompt hi --device tpu
if ! nvidia-smi -L >/dev/null 2>&1; then  # without a GPU, --device gpu says why it cannot run
  expect_error "no CUDA device\|built without CUDA" "$ringkv" generate --model "$model" --prompt hi --device gpu
  expect_error "no CUDA device\|built without CUDA" "$ringkv" perplexity --model "$model" --text "$text" --window 256 \
    --max-windows 1 --kv bf16 --device gpu
else
  expect_error "runs on the CPU backend" "$ringkv" generate --model "$model" --prompt hi --device gpu --kv "int:bits=2|int:bits=4"
fi
cp -r "$model" "$dir/broken"
head -c 5000 "$model/model.safetensors" > "$dir/broken/model.safetensors"
expect_error "model.safetensors" "$ringkv" generate --model "$dir/broken" --prompt hi
sed 's/"num_hidden_layers": 2/"num_hidden_layers": 3/' "$model/config.json" > "$dir/broken/config.json"
cp "$model/model.safetensors" "$dir/broken/"
expect_error "has no tensor model.layers.2" "$ringkv" generate --model "$dir/broken" --prompt hi
expect_error "other codebooks\|calibration\|table" "$ringkv" perplexity --model "$model" --text "$text" --window 256 \
  --calibration "$dir/kv.dump" --kv cq:channels=4,bits=6
[ $failures -eq 0 ] && echo "all model commands work" || exit 1
