#!/usr/bin/env bash
# Builds and runs apps/demo: a tiny model trained for a few steps on the CPU. Arguments are passed
# to the demo.
set -euo pipefail
cd "$(dirname "$0")/.."

cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build/release -j "$(nproc)" --target demo
build/release/apps/demo "$@"
