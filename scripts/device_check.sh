#!/usr/bin/env bash
# On a GPU machine: build with CUDA, run every test (GPU tests for real), and run the GPU tests
# under compute-sanitizer (memcheck, racecheck). Logs go to $OUT when set.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp}
export OMP_WAIT_POLICY=PASSIVE OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release > "$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
grep "RingKV:" "$out/configure.log"
cmake --build build-gpu -j "$(nproc)" -- -k 0 > "$out/build.log" 2>&1 || { grep -E "error|FAILED" "$out/build.log" | head -30; exit 1; }
(cd build-gpu && ctest -j 8 --output-on-failure > "$out/ctest.log" 2>&1); status=$?
grep -E "tests passed|Skipped|Failed" "$out/ctest.log" | tail -8
# The kernel tests (the whole-model comparisons run the CPU forward pass too: too slow under the tools).
for tool in memcheck racecheck; do
  compute-sanitizer --tool $tool --error-exitcode 3 build-gpu/tests/ringkv_gpu_tests --gtest_filter='-*GpuForward*' \
    > "$out/sanitizer-$tool.log" 2>&1
  echo "compute-sanitizer $tool: exit $? ($(grep -E 'ERROR SUMMARY|PASSED|FAILED' "$out/sanitizer-$tool.log" | tail -2 | tr '\n' ' '))"
done
exit $status
