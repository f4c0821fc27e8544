#!/usr/bin/env bash
# Runs a program under mpirun with P ranks: cores may be oversubscribed, idle OpenMP threads sleep,
# the sanitizer settings travel, and root is allowed where the tests run as root.
set -euo pipefail
mpirun=$1 np=$2
shift 2
flags=(--oversubscribe -x OMP_WAIT_POLICY=PASSIVE -x ASAN_OPTIONS)
[ "$(id -u)" = 0 ] && flags+=(--allow-run-as-root)
exec "$mpirun" "${flags[@]}" -np "$np" "$@"
