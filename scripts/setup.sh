#!/usr/bin/env bash
# Installs what a fresh Debian/Ubuntu machine lacks, then configures and builds RingKV.
# usage: scripts/setup.sh BUILD_DIR [extra cmake arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: scripts/setup.sh BUILD_DIR [cmake args...]}
shift

packages=(cmake ninja-build g++ libopenmpi-dev openmpi-bin libgtest-dev libcli11-dev
          nlohmann-json3-dev)
have_tools() {
  command -v cmake >/dev/null && command -v mpirun >/dev/null && command -v ninja >/dev/null &&
    { [ -f /usr/include/CLI/CLI.hpp ] || [ -f /usr/local/include/CLI/CLI.hpp ]; } &&
    { [ -f /usr/include/nlohmann/json.hpp ] || [ -f /usr/local/include/nlohmann/json.hpp ]; } &&
    { [ -d /usr/include/gtest ] || [ -d /usr/local/include/gtest ]; }
}
if ! have_tools; then
  if command -v apt-get >/dev/null; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "setup: installing ${packages[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${packages[@]}" >/dev/null
  else
    echo "setup: missing build tools (CMake, Ninja, OpenMPI, CLI11, nlohmann-json, GoogleTest) and no apt-get" >&2
    exit 1
  fi
fi

# nvcc is optional: the CUDA kernels build where it is found.
if [ -z "${CUDACXX:-}" ] && ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi
cmake -S . -B "$build" -G Ninja "$@" >/dev/null
cmake --build "$build" -j "$(nproc)"
