#!/usr/bin/env bash
# The main job: set up, build, and run `ringkv analyze` over 2 MPI ranks (on CPU when no GPU is present).
# Extra arguments go to `ringkv analyze`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build -DCMAKE_BUILD_TYPE=Release -DRINGKV_BUILD_TESTS=OFF
flags=(--oversubscribe)
[ "$(id -u)" = 0 ] && flags+=(--allow-run-as-root)
# Ranks may share cores: idle OpenMP threads sleep instead of spinning.
exec mpirun "${flags[@]}" -x OMP_WAIT_POLICY=PASSIVE -np 2 build/launch/ringkv analyze --csv build/analyze.csv "$@"
