#!/usr/bin/env bash
# Compile steps of a configured Ninja build, timed one at a time with ccache disabled: for each
# object file given, prints "cpu_seconds wall_seconds object" (cpu = user + sys of the compiler).
# CPU seconds barely depend on what else loads the machine, so two trees can be compared on a busy
# one. The objects are paths as `ninja -t commands` writes them; docs/cuda.md shows how the figures
# of the link-time dispatch were taken with it.
#
#   bash bench/compile_steps.sh build/ci ops/CMakeFiles/ops.dir/layernorm.cpp.o ...
set -euo pipefail
(($# >= 2)) || { echo "usage: $0 BUILD_DIR OBJECT..." >&2; exit 2; }
build=$1
shift
export CCACHE_DISABLE=1
times=$(mktemp)
trap 'rm -f "$times"' EXIT
for object in "$@"; do
  command=$(ninja -C "$build" -t commands "$object" | tail -n 1)
  [[ $command == *" -c "* ]] || { echo "$0: $object is not a compile step of $build" >&2; exit 1; }
  mkdir -p "$build/$(dirname "$object")"
  rm -f "$build/$object"
  /usr/bin/time -f "%U %S %e" -o "$times" bash -c "cd '$build' && $command" >/dev/null
  read -r user sys wall <"$times"
  awk -v u="$user" -v s="$sys" -v w="$wall" -v o="$object" 'BEGIN { printf "%.2f %s %s\n", u + s, w, o }'
done
