#!/usr/bin/env bash
# Sequence parallelism from the command line: `ringkv logits` and `ringkv generate` on 2 and 3
# ranks give what one rank gives (logits within float tolerance, the same greedy tokens) for every
# codec, and `ringkv qa` answers questions about a document on 2 ranks.
set -uo pipefail
ringkv=$1 mpirun=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
flags=(--oversubscribe -x OMP_WAIT_POLICY=PASSIVE -x OMP_NUM_THREADS=1 -x ASAN_OPTIONS)
[ "$(id -u)" = 0 ] && flags+=(--allow-run-as-root)
ranks() { local np=$1; shift; "$mpirun" "${flags[@]}" -np "$np" "$ringkv" "$@"; }

model=$dir/model
"$ringkv" init-model -o "$model" --layers 2 --hidden 128 --intermediate 256 --heads 4 --kv-heads 2 --head-dim 32 >/dev/null ||
  { echo "init-model failed"; exit 1; }
for i in $(seq 1 40); do echo "Verse $i: in the beginning was the word, and the word was with the reader of long documents."; done > "$dir/doc.txt"
"$ringkv" tokenize --model "$model" --text "$dir/doc.txt" --bos > "$dir/ids.txt" || fail "tokenize"
specs=(bf16 int:bits=2 kvquant:bits=2,outliers=0.01,sink=1 cq:channels=4,bits=6 rvq:depth=2,codes=16,group=8)
"$ringkv" calibrate --model "$model" --text "$dir/doc.txt" --tokens 2048 --window 512 "${specs[@]/#/--kv=}" -o "$dir/cal.rkv" \
  >/dev/null || fail "calibrate"
common=(--model "$model" --calibration "$dir/cal.rkv" --page-size 32 --chunk 64)

# Largest |difference| / largest |logit| over the rows of two [tokens][vocab] float32 files.
compare() {
  python3 - "$1" "$2" <<'PY'
import array, sys
a, b = array.array('f'), array.array('f')
a.frombytes(open(sys.argv[1], 'rb').read()); b.frombytes(open(sys.argv[2], 'rb').read())
assert len(a) == len(b) and len(a) > 0, "logit files differ in size"
print(max(abs(x - y) for x, y in zip(a, b)) / max(abs(x) for x in a))
PY
}

for spec in "${specs[@]}"; do
  ranks 1 logits "${common[@]}" --kv "$spec" --token-ids "$dir/ids.txt" --decode-from 3000 -o "$dir/one.bin" >/dev/null ||
    fail "logits on one rank ($spec)"
  for np in 2 3; do
    ranks "$np" logits "${common[@]}" --kv "$spec" --token-ids "$dir/ids.txt" --decode-from 3000 -o "$dir/many.bin" >/dev/null ||
      fail "logits on $np ranks ($spec)"
    error=$(compare "$dir/one.bin" "$dir/many.bin") || fail "comparing logits ($spec)"
    if python3 -c "import sys; sys.exit(0 if float('$error') < 1e-3 else 1)"; then
      echo "ok: $spec logits on $np ranks match one rank (max relative difference $error)"
    else
      fail "$spec logits on $np ranks differ from one rank by $error"
    fi
  done
  gen() { ranks "$1" generate "${common[@]}" --kv "$spec" --prompt-file "$dir/doc.txt" --max-new-tokens 40 --print-ids \
    --ignore-eos 2>/dev/null; }
  one=$(gen 1) three=$(gen 3)
  [ -n "$one" ] && [ "$one" = "$three" ] && echo "ok: $spec generate on 3 ranks gives one rank's tokens" ||
    fail "$spec generate: one rank '$one', three ranks '$three'"
done

answers=$(ranks 2 qa "${common[@]}" --kv int:bits=2 --document "$dir/doc.txt" --question "What was in the beginning?" \
  --question "Who reads?" --max-answer-tokens 12 2>"$dir/qa.log")
if [ "$(grep -c '^Q: ' <<<"$answers")" = 2 ] && [ "$(grep -c '^A:' <<<"$answers")" = 2 ] && grep -q "2 rank" "$dir/qa.log"; then
  echo "ok: qa on 2 ranks answers both questions"
else
  fail "qa: $answers $(cat "$dir/qa.log")"
fi

# The document's cache saved by one run answers the same questions in another without reading it.
qa() { ranks "$1" qa "${common[@]}" --kv int:bits=2 --question "What was in the beginning?" --max-answer-tokens 12 "${@:2}"; }
fresh=$(qa 2 --document "$dir/doc.txt" --save-kv "$dir/saved" 2>/dev/null) || fail "qa --save-kv"
again=$(qa 2 --load-kv "$dir/saved" --document "$dir/doc.txt" 2>"$dir/load.log") || fail "qa --load-kv: $(cat "$dir/load.log")"
[ -n "$fresh" ] && [ "$fresh" = "$again" ] && grep -q "loaded from" "$dir/load.log" && echo "ok: a saved cache answers as the document did" ||
  fail "qa from a saved cache: '$fresh' vs '$again'"
head -c 2000 "$dir/doc.txt" > "$dir/other.txt"
out=$(qa 2 --load-kv "$dir/saved" --document "$dir/other.txt" 2>&1) && fail "qa loaded a cache saved for another document" ||
  { grep -q "another document" <<<"$out" && echo "ok: refused a cache of another document" || fail "qa: $out"; }
out=$(qa 3 --load-kv "$dir/saved" 2>&1) && fail "qa loaded 2 ranks' cache on 3" ||
  { grep -q "saved by 2 rank(s)" <<<"$out" && echo "ok: refused a cache saved by another number of ranks" || fail "qa: $out"; }

[ $failures -eq 0 ] && echo "all sequence-parallel command checks passed" || { echo "$failures failures"; exit 1; }
