#!/usr/bin/env bash
# On a GPU machine: `ringkv generate --device gpu` end to end on a model with random weights and
# the Llama-3-8B layer shape (hidden 4096, 32 query and 8 KV heads of 128, SwiGLU 14336, bf16
# weights), LAYERS layers deep (32: the whole model): prefill and decode speed at each context, for
# each KV codec the GPU runs and each number of GPUs (ranks under mpirun, one GPU each; several GPUs
# take a bf16 cache), from random prompt token ids; CQ, KVQuant and RVQ learn their tables first
# (ringkv calibrate on $RINGKV_DATA/gcide-calibration.txt). Writes WORK_DIR/generate_gpu.csv (prefill
# tokens/s in column 5, as plot_context_scaling.sh reads it) and draws the scaling plot next to it
# where gnuplot is installed.
# GENERATE_ARGS: further `ringkv generate` options for every run (e.g. --no-decode-graphs).
# usage: bench/generate_gpu.sh BUILD_DIR WORK_DIR [LAYERS] [CONTEXTS] [NEW_TOKENS] [KV_SPECS] [RANKS] [GENERATE_ARGS]
set -euo pipefail
usage="usage: bench/generate_gpu.sh BUILD_DIR WORK_DIR [LAYERS] [CONTEXTS] [NEW_TOKENS] [KV_SPECS] [RANKS] [GENERATE_ARGS]"
build=${1:?$usage}
work=${2:?$usage}
layers=${3:-32}
contexts=${4:-32768,131072}
new_tokens=${5:-64}
specs=${6:-bf16}  # space-separated, e.g. "bf16 int:bits=4 int:bits=2 cq:channels=8,bits=8"
ranks_list=${7:-1}  # comma-separated numbers of GPUs, e.g. 1,2
read -r -a generate_args <<< "${8:-}"
ringkv="$build/launch/ringkv"
text=${RINGKV_DATA:-$(dirname "$0")/../../shared/data}/gcide-calibration.txt  # for CQ's centroids
model="$work/llama3-8b-shape-${layers}-layers"
mkdir -p "$work"
csv="$work/generate_gpu.csv"
echo "ranks,codec,context,prefill_s,prefill_tokens_per_s,decode_ms_per_token,decode_tokens_per_s,bits_per_element,kv_gib_per_gpu" > "$csv"
[ -f "$model/config.json" ] || "$ringkv" init-model -o "$model" --hidden 4096 --intermediate 14336 --layers "$layers" \
  --heads 32 --kv-heads 8 --head-dim 128 > /dev/null
echo "ringkv generate --device gpu ${8:-}, Llama-3-8B layer shape, $layers layers, $new_tokens new tokens"
printf "%5s %-12s %9s %10s %14s %13s %13s %13s %9s %12s\n" GPUs codec context "prefill s" "prefill tok/s" "decode s" \
  "ms per token" "decode tok/s" "bits/el" "KV GiB/GPU"
for context in ${contexts//,/ }; do
  ids="$work/prompt-$context.txt"
  awk -v n="$context" 'BEGIN { srand(7); for (i = 0; i < n; i++) printf "%d ", 3 + int(rand() * 250); print "" }' > "$ids"
  for ranks in ${ranks_list//,/ }; do
    launcher=()
    [ "$ranks" -gt 1 ] && launcher=(mpirun -np "$ranks" --bind-to none --allow-run-as-root -x NCCL_NVLS_ENABLE=0)
    for spec in $specs; do
      [ "$ranks" -gt 1 ] && [ "$spec" != bf16 ] && continue  # several GPUs hold a bf16 cache
      log="$work/generate-$context-$ranks-${spec//[:=,]/_}.log"
      calibration=()
      # Tables learned from the model's keys and values on calibration text (KVQuant's even levels, nuq=0, need none).
      if [[ "${spec%%:*}" =~ ^(cq|kvquant|rvq)$ && "$spec" != *nuq=0* ]]; then
        calib="$model/${spec//[:=,]/_}.calib"
        [ -f "$calib" ] || "$ringkv" calibrate --model "$model" --text "$text" --tokens 4096 --window 1024 --kv "$spec" \
          -o "$calib" > /dev/null
        calibration=(--calibration "$calib")
      fi
      "${launcher[@]}" "$ringkv" generate --model "$model" --prompt-ids "$ids" --device gpu --kv "$spec" "${calibration[@]}" \
        --chunk 8192 --max-new-tokens "$new_tokens" --ignore-eos --print-ids ${generate_args[@]+"${generate_args[@]}"} > /dev/null 2> "$log" ||
        { cat "$log"; exit 1; }
      # "prompt: N tokens, prefill S s (R tokens/s); generated G tokens, D s (T tokens/s) ..." then
      # "KV cache (SPEC, on the GPU): BYTES for N tokens, B bits per element"
      # "...; P ranks hold A GiB to B GiB each" on several ranks: B is the most one GPU holds.
      bits=$(sed -n 's/.* \([0-9.]*\) bits per element.*/\1/p' "$log")
      kv=$(sed -n 's/.* to \([0-9.]*\) \([MG]\)iB each.*/\1 \2/p; t; s/^KV cache ([^)]*): \([0-9.]*\) \([MG]\)iB.*/\1 \2/p' "$log" |
        tail -1 | awk '{ printf "%.3f", $2 == "M" ? $1 / 1024 : $1 }')
      sed -n 's/^prompt: \([0-9]*\) tokens, prefill \([0-9.]*\) s (\([0-9.]*\) tokens\/s); generated \([0-9]*\) tokens, \([0-9.]*\) s (\([0-9.]*\) tokens\/s).*/\1 \2 \3 \4 \5 \6/p' "$log" |
        awk -v spec="$spec" -v bits="$bits" -v ranks="$ranks" -v kv="$kv" -v csv="$csv" '{
          printf "%5d %-12s %9d %10.2f %14.0f %13.3f %13.2f %13.1f %9s %12s\n", ranks, spec, $1, $2, $3, $5, 1000 * $5 / $4, $6, bits, kv
          printf "%d,\"%s\",%d,%.3f,%.0f,%.3f,%.1f,%s,%s\n", ranks, spec, $1, $2, $3, 1000 * $5 / $4, $6, bits, kv >> csv }'
    done
  done
done
"$(dirname "$0")/plot_context_scaling.sh" "$csv" "$work/generate_gpu.png" "ringkv generate --device gpu, $layers layers"
