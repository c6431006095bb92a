#!/usr/bin/env bash
# The test suite, as CI runs it:
#   1. a Release build with warnings as errors (build/ci): every test (GPU tests skip themselves
#      when no GPU is present);
#   2. an AddressSanitizer + UndefinedBehaviorSanitizer build (build/sanitize): the unit tests;
#   3. the fuzz build (build/fuzz, clang, libFuzzer + ASan): every seed of tests/fuzz as a regression
#      test, then each parser's target fuzzed for FUZZ_RUNS inputs (default 20000) from its seeds,
#      with a fixed libFuzzer seed so that CI runs the same inputs every time (long fuzzing runs, which
#      look for new inputs, are recorded in docs/reliability.md).
# Exits non-zero on any failure and ends with ctest's summary lines of both runs.
set -euo pipefail
cd "$(dirname "$0")/.."
# ccache keys on paths relative to the checkout, so a fresh clone reuses an earlier clone's objects.
# (Without the working directory in the hash of -g builds: their debug info may then name another
# clone's build folder, which only a debugger would notice.)
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1

# Builds use every core; tests run one at a time, since each already uses every core through
# OpenMP (two at once oversubscribe the cores and OpenMP's spinning barriers crawl).
jobs=$(nproc)
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
start=$SECONDS

# Every file and docs anchor named by a comment or a doc exists (cheap: before the builds).
bash scripts/check_doc_refs.sh
# Every source opens with a comment saying what it holds.
bash scripts/check_opening_comments.sh

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

echo "== Fuzz build (build/fuzz): clang, libFuzzer + ASan"
CC=clang CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only" -DENGINE_FUZZ=ON -DENGINE_CUDA=OFF
cmake --build build/fuzz -j "$jobs" --target fuzz_targets
echo "== ctest -L fuzz (build/fuzz): every seed once"
ctest --test-dir build/fuzz -L fuzz --output-on-failure | tee "$logs/fuzz.log"
echo "== fuzzing each target for ${FUZZ_RUNS:-20000} inputs (libFuzzer seed ${FUZZ_SEED:-1})"
for source in tests/fuzz/fuzz_*.cpp; do
  name=$(basename "$source" .cpp)
  # New inputs go to a scratch folder (the seeds in the repository are read only); a failing input
  # is kept in build/fuzz/artifacts.
  mkdir -p "$logs/$name" build/fuzz/artifacts
  if ! OMP_NUM_THREADS=1 "build/fuzz/tests/fuzz/$name" -runs="${FUZZ_RUNS:-20000}" -seed="${FUZZ_SEED:-1}" \
       -max_total_time=120 -rss_limit_mb=2048 \
       -timeout=10 -artifact_prefix="build/fuzz/artifacts/$name-" "$logs/$name" "tests/fuzz/${name#fuzz_}" \
       > "$logs/$name.log" 2>&1; then
    tail -n 60 "$logs/$name.log"
    echo "test.sh: $name found a failing input (above, kept in build/fuzz/artifacts); fix it and add it to" \
         "tests/fuzz/${name#fuzz_}/" >&2
    exit 1
  fi
  echo "$name: $(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$logs/$name.log")"
done

echo "== Summary"
for run in ci sanitize fuzz; do
  echo "build/$run: $(grep -E 'tests passed|tests failed' "$logs/$run.log")"
done
echo "test.sh: all passed in $((SECONDS - start)) s"
