#!/usr/bin/env bash
# On a GPU machine, with binaries already built (BUILD holds tests/, bench/ and launch/ as a CMake
# build does; binaries compressed as NAME.xz next to where they belong are unpacked first): the
# GPU tests, compute-sanitizer, and the GPU benchmarks, each chosen by an environment variable, all
# in one run. Logs and tables go to $OUT (default /tmp), and a short summary to stdout. The model
# tests and generate_gpu.sh's calibration read $RINGKV_MODELS and $RINGKV_DATA.
#   TESTS=1 [FILTER=gtest-filter]           ringkv_gpu_tests
#   SAN=1 [SANFILTER=...] [SANTIME=s]        compute-sanitizer memcheck and racecheck on them
#   DECODE=1 [CONTEXTS=..] [BATCHES=..] [CODECS=bf16,int,cq,kvquant,rvq]   bench/decode_attention.sh
#   PREFILL=1 [PREFILL_CONTEXTS=16384,65536]  bench/prefill_attention.sh
#   ENCODE=1                                 bench_encode
#   GEN="specs" [GEN_LAYERS=8] [GEN_CONTEXTS=131072] [GEN_NEW=128]   bench/generate_gpu.sh on one GPU
#   NCU="kernel-regex|launch-skip|bench binary|args;..."   Nsight Compute profiles (details and SASS pages)
# usage: scripts/device_run.sh BUILD
set -uo pipefail
build=$(cd "${1:?usage: scripts/device_run.sh BUILD}" && pwd)
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-/tmp}
export OMP_WAIT_POLICY=PASSIVE OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
for packed in "$build"/*/*.xz; do
  [ -e "$packed" ] || continue
  xz -dc "$packed" > "${packed%.xz}" && chmod +x "${packed%.xz}"
done
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader

if [ -n "${TESTS:-}" ]; then
  "$build/tests/ringkv_gpu_tests" --gtest_filter="${FILTER:-*}" > "$out/tests.log" 2>&1
  echo "tests: exit $?"
  grep -E "^\[  (PASSED|FAILED)|^\[  FAILED" "$out/tests.log" | tail -20
fi
if [ -n "${SAN:-}" ]; then
  for tool in memcheck racecheck; do
    timeout "${SANTIME:-300}" compute-sanitizer --tool $tool --error-exitcode 3 "$build/tests/ringkv_gpu_tests" \
      --gtest_filter="${SANFILTER:--*GpuForward*}" > "$out/sanitizer-$tool.log" 2>&1
    echo "compute-sanitizer $tool: exit $? ($(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/sanitizer-$tool.log" | tail -1))"
  done
fi
if [ -n "${DECODE:-}" ]; then
  "$repo/bench/decode_attention.sh" "$build" "${CONTEXTS:-1048576}" "${BATCHES:-1}" "${CODECS:-bf16,int,cq,kvquant,rvq}" \
    > "$out/decode.txt" 2>&1
  echo "decode attention: exit $?"; cat "$out/decode.txt"
fi
if [ -n "${PREFILL:-}" ]; then
  "$repo/bench/prefill_attention.sh" "$build" "${PREFILL_CONTEXTS:-16384,65536}" > "$out/prefill.txt" 2>&1
  echo "prefill attention: exit $?"; cat "$out/prefill.txt"
fi
if [ -n "${ENCODE:-}" ]; then
  "$build/bench/bench_encode" > "$out/encode.txt" 2>&1
  echo "page encoding: exit $?"; cat "$out/encode.txt"
fi
if [ -n "${GEN:-}" ]; then
  "$repo/bench/generate_gpu.sh" "$build" "$out/generate" "${GEN_LAYERS:-8}" "${GEN_CONTEXTS:-131072}" "${GEN_NEW:-128}" "$GEN" 1 \
    > "$out/generate.txt" 2>&1
  echo "generate: exit $?"; cat "$out/generate.txt"
fi
if [ -n "${NCU:-}" ]; then
  IFS=';' read -r -a profiles <<< "$NCU"
  n=0
  for profile in "${profiles[@]}"; do
    IFS='|' read -r kernel skip binary args <<< "$profile"
    n=$((n + 1))
    # shellcheck disable=SC2086  # args split into words
    # The report and the profiler's log stay out of $OUT (at most 8 files come back from a device call).
    ncu --kernel-name "regex:$kernel" --launch-skip "$skip" --launch-count 1 --set full --import-source yes -o "/tmp/profile$n" -f \
      "$build/bench/$binary" $args > "/tmp/ncu$n.log" 2>&1
    echo "ncu $n ($kernel): exit $?"; tail -3 "/tmp/ncu$n.log"
    ncu --import "/tmp/profile$n.ncu-rep" --page details > "$out/details$n.txt" 2>&1
    ncu --import "/tmp/profile$n.ncu-rep" --page source --csv --print-source sass > "$out/sass$n.csv" 2>&1
    grep -E "Duration|Executed Instructions  |Issue Slots Busy|No Eligible|Registers Per|Achieved Occupancy" "$out/details$n.txt"
  done
fi
