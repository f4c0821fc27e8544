#!/usr/bin/env bash
# Sets up, builds with AddressSanitizer and UndefinedBehaviorSanitizer, and runs every test.
# GPU tests skip without a device. Set RINGKV_SANITIZE=OFF to test an optimized build instead.
set -euo pipefail
cd "$(dirname "$0")/.."
sanitize=${RINGKV_SANITIZE:-ON}
build=build-test
[ "$sanitize" = ON ] && build=build-asan
scripts/setup.sh "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRINGKV_SANITIZE="$sanitize"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export OMPI_MCA_rmaps_base_oversubscribe=1
# Tests run in parallel on few cores: idle OpenMP threads must sleep, not spin, or they starve each other.
export OMP_WAIT_POLICY=PASSIVE
cd "$build"
ctest --output-on-failure -j "$(nproc)" "$@"
