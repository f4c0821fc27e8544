#!/usr/bin/env bash
# The main job: set up, build, then on CPU (2 MPI ranks where ranks share the work):
#   1. learn codec tables from the model's own keys and values on calibration text,
#   2. the perplexity table of a text under each KV codec (windows split over 2 ranks),
#   3. generation from a prompt with a bf16 cache and with a 2-bit KVQuant cache, the cache spread
#      over the 2 ranks (ring-attention prefill, merged decode),
#   4. questions about a document held in a 2-bit cache spread over the 2 ranks.
# The model is reftiny-14m from $RINGKV_MODELS or ../shared/models, the texts from $RINGKV_DATA or
# ../shared/data; where they are absent, a small random-weight model written by `ringkv init-model`
# and this README serve instead (the numbers then say nothing about quality).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build -DCMAKE_BUILD_TYPE=Release -DRINGKV_BUILD_TESTS=OFF
ringkv=build/launch/ringkv
models=${RINGKV_MODELS:-../shared/models}
data=${RINGKV_DATA:-../shared/data}
mpirun=(mpirun --oversubscribe -np 2 -x OMP_WAIT_POLICY=PASSIVE)  # ranks may share cores: idle threads sleep
[ "$(id -u)" = 0 ] && mpirun+=(--allow-run-as-root)
export OMP_WAIT_POLICY=PASSIVE

if [ -f "$models/reftiny-14m/config.json" ] && [ -f "$data/kjv-new-testament.txt" ]; then
  model=$models/reftiny-14m calib_text=$data/gcide-calibration.txt eval_text=$data/kjv-new-testament.txt
  window=2048 prompt="In the beginning God created the heaven and the earth. And the earth was"
  echo "== Model: reftiny-14m ($model); calibration on $calib_text, perplexity on $eval_text"
else
  model=build/random-model calib_text=README.md eval_text=README.md window=512 prompt="RingKV holds"
  echo "== reftiny-14m or the texts are absent ($models, $data): using a random-weight model written by"
  echo "== ringkv init-model, and README.md as text. Quality numbers from it mean nothing."
  "$ringkv" init-model -o "$model"
fi
specs=(kvquant:bits=2,outliers=0.01,sink=1,qnorm=1 kvquant:bits=1,outliers=0.01,sink=1,qnorm=1
       cq:channels=4,bits=8 cq:channels=8,bits=8 rvq:depth=4,codes=256,group=32)
kv=()
for s in "${specs[@]}"; do kv+=(--kv "$s"); done

echo; echo "== ringkv calibrate"
"$ringkv" calibrate --model "$model" --text "$calib_text" --tokens 8192 --window "$window" "${kv[@]}" -o build/model.calib

echo; echo "== ringkv perplexity (2 ranks)"
"${mpirun[@]}" "$ringkv" perplexity --model "$model" --text "$eval_text" --window "$window" --max-windows 4 \
  --calibration build/model.calib --kv bf16 --kv int:bits=4 --kv int:bits=2 --kv int:bits=1 "${kv[@]}" --csv build/perplexity.csv

# A document's opening (about 1000 tokens, so most of the cache is in sealed, compressed pages), then a prompt.
{ head -c 3500 "$eval_text"; echo; echo "$prompt"; } > build/prompt.txt
for spec in bf16 kvquant:bits=2,outliers=0.01,sink=1,qnorm=1; do
  echo; echo "== ringkv generate --kv $spec --prompt-file build/prompt.txt (2 ranks; ends: \"$prompt\")"
  "${mpirun[@]}" "$ringkv" generate --model "$model" --prompt-file build/prompt.txt --max-new-tokens 48 --kv "$spec" \
    --calibration build/model.calib
done

echo; echo "== ringkv qa (2 ranks): questions about the first 12000 bytes of $eval_text"
head -c 12000 "$eval_text" > build/document.txt
"${mpirun[@]}" "$ringkv" qa --model "$model" --document build/document.txt --kv kvquant:bits=2,outliers=0.01,sink=1,qnorm=1 \
  --calibration build/model.calib --max-answer-tokens 24 --question "Who was the son of David?" --question "Where was Jesus born?"
