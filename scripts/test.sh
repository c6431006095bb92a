#!/usr/bin/env bash
# The test suite, as CI runs it:
#   1. a Release build with warnings as errors (build/ci): every test (GPU tests skip themselves
#      when no GPU is present);
#   2. an AddressSanitizer + UndefinedBehaviorSanitizer build (build/sanitize): the unit tests.
# Exits non-zero on any failure and ends with ctest's summary lines of both runs.
set -euo pipefail
cd "$(dirname "$0")/.."

# Builds use every core; tests run one at a time, since each already uses every core through
# OpenMP (two at once oversubscribe the cores and OpenMP's spinning barriers crawl).
jobs=$(nproc)
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
start=$SECONDS

# Every file and docs anchor named by a comment or a doc exists (cheap: before the builds).
bash scripts/check_doc_refs.sh

echo "== Release build (build/ci), warnings as errors"
cmake -S . -B build/ci -G Ninja -DCMAKE_BUILD_TYPE=Release -DENGINE_WERROR=ON
cmake --build build/ci -j "$jobs"
echo "== ctest (build/ci)"
ctest --test-dir build/ci --output-on-failure | tee "$logs/ci.log"

echo "== Sanitizer build (build/sanitize): ASan + UBSan, unit tests"
# The unit tests run on the CPU: no CUDA kernels here (they are built and warning-checked above).
cmake -S . -B build/sanitize -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DENGINE_SANITIZE=ON -DENGINE_CUDA=OFF
# The unit test executables are the tests labelled `unit` (a test is named after its executable).
mapfile -t unit_tests < <(ctest --test-dir build/sanitize -L unit -N | sed -n 's/^ *Test *#[0-9]*: *//p')
((${#unit_tests[@]})) || { echo "test.sh: no tests labelled unit" >&2; exit 1; }
cmake --build build/sanitize -j "$jobs" --target "${unit_tests[@]}"
echo "== ctest -L unit (build/sanitize)"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build/sanitize -L unit --output-on-failure | tee "$logs/sanitize.log"

echo "== Summary"
for run in ci sanitize; do
  echo "build/$run: $(grep -E 'tests passed|tests failed' "$logs/$run.log")"
done
echo "test.sh: all passed in $((SECONDS - start)) s"
