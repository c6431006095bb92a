#!/usr/bin/env bash
# The one script to run when a machine with an NVIDIA GPU is available (docs/cuda.md, "First contact
# with a real GPU"). In under 10 minutes after the build it records, in docs/results/gpu_check.md:
#   1. the GPUs, driver and toolkit;
#   2. `ctest -L gpu` (the CUDA backend, ops, NCCL communicator and models against the CPU);
#   3. compute-sanitizer memcheck and racecheck over the GPU op tests;
#   4. bench_gpu (GEMM, attention, transformer block: TFLOP/s and MFU), bench_gpu attention through
#      cuDNN (--attention cudnn), and whether cuDNN accepted our attention graphs or refused (and why);
#   5. a 200-step train_lm --device cuda of a GPT-2-small-sized model (12 layers, 768 channels,
#      12 heads) at context 1024: tokens/s and MFU;
#   6. with two or more GPUs, train_lm on 1 GPU against 2 GPUs (mpirun -np 2): the same losses and
#      parameters (tests/apps/compare_runs.py).
# Each step has a time limit; a failing or timed-out step is recorded and the others still run; the
# exit status is non-zero when any step failed. Without a usable GPU it says so and exits 0 having
# run, built and written nothing.
#
# Usage: scripts/gpu_check.sh
# Environment: BUILD_DIR (default build/gpu; an existing build is reused), REPORT (default
# docs/results/gpu_check.md), NVIDIA_SMI (default nvidia-smi), MPIEXEC (default mpirun).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

build=${BUILD_DIR:-build/gpu}
report=${REPORT:-docs/results/gpu_check.md}
nvidia_smi=${NVIDIA_SMI:-nvidia-smi}
mpiexec=${MPIEXEC:-mpirun}

# ---- a GPU, or nothing at all ----
if ! gpu_list=$("$nvidia_smi" -L 2>/dev/null) || ! grep -q '^GPU ' <<<"$gpu_list"; then
  echo "gpu_check: no usable NVIDIA GPU ('$nvidia_smi -L' lists none): nothing run, $report left as it is"
  exit 0
fi
gpus=$(grep -c '^GPU ' <<<"$gpu_list")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
start=$SECONDS
mkdir -p "$(dirname "$report")"
out="$work/report.md"

# section TITLE: starts a report section.
section() { printf '\n## %s\n\n' "$1" >>"$out"; echo "== $1"; }
# record NAME LIMIT_S COMMAND...: runs COMMAND with a time limit, keeps its output, notes the result.
record() {
  local name=$1 limit=$2; shift 2
  local log="$work/$name.log" t0=$SECONDS status
  timeout "$limit" "$@" >"$log" 2>&1
  status=$?
  local verdict="passed"
  if ((status == 124)); then verdict="TIMED OUT after ${limit} s"; elif ((status != 0)); then verdict="FAILED (exit $status)"; fi
  ((status == 0)) || failures=$((failures + 1))
  {
    # shellcheck disable=SC2016  # the backquotes are Markdown
    printf -- '- `%s`: **%s** in %d s\n\n```\n' "$*" "$verdict" $((SECONDS - t0))
    tail -n 40 "$log"
    printf '```\n'
  } >>"$out"
  echo "   $name: $verdict"
  return "$status"
}

{
  echo "# GPU check"
  echo
  echo "Written by \`scripts/gpu_check.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)."
  echo "CPU: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)."
} >"$out"

section "Device and driver"
{
  echo '```'
  "$nvidia_smi" --query-gpu=index,name,driver_version,memory.total,compute_cap --format=csv
  nvcc --version 2>/dev/null | tail -n 2 || echo "nvcc: not on PATH"
  echo '```'
} >>"$out" 2>&1

section "Build ($build)"
record configure 300 cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DENGINE_CUDA=ON
record build 1200 cmake --build "$build" -j "$(nproc)" --target test_gpu test_ops_gpu test_dist_gpu test_models_gpu \
  bench_gpu train_lm || { echo "gpu_check: the build failed; see $report"; cp "$out" "$report"; exit 1; }

section "ctest -L gpu"
record ctest_gpu 240 ctest --test-dir "$build" -L gpu --output-on-failure

section "compute-sanitizer over the GPU op tests"
if command -v compute-sanitizer >/dev/null; then
  record memcheck 150 compute-sanitizer --tool memcheck --error-exitcode 1 "$build/tests/test_ops_gpu"
  record racecheck 150 compute-sanitizer --tool racecheck --error-exitcode 1 "$build/tests/test_ops_gpu"
else
  echo "compute-sanitizer is not on PATH (it ships with the CUDA toolkit: /usr/local/cuda/bin)" >>"$out"
  failures=$((failures + 1))
fi

section "bench_gpu"
record bench_gpu 120 "$build/apps/bench_gpu" all
record bench_gpu_cudnn 60 "$build/apps/bench_gpu" attention --attention cudnn
peak_tf32=$(sed -n 's/.*TF32 \([0-9.]*\),.*/\1/p' "$work/bench_gpu.log" | head -1)
{
  echo
  # cuDNN attention asked for and refused stops bench_gpu with the reason (ops/attention.h).
  if grep -q 'cuDNN attention was asked for' "$work/bench_gpu_cudnn.log"; then
    echo "cuDNN attention: **refused**: $(grep -m1 'cuDNN attention was asked for' "$work/bench_gpu_cudnn.log")"
  else
    echo "cuDNN attention: **accepted** (validated against the hand-written kernel at first use; timings in bench_gpu_cudnn)."
  fi
} | tee -a "$out"

# A generated corpus: throughput does not depend on the text, and the check needs nothing prepared.
corpus="$work/corpus"
mkdir -p "$corpus"
for split in train valid test; do
  lines=40000; [ "$split" != train ] && lines=2000
  awk -v n=$lines -v s="$split" 'BEGIN { srand(7); for (i = 0; i < n; i++)
    printf "In the year %d the %s address spoke of %s, %s and the union of %d states.\n", 1790 + i % 230, s,
      (rand() < 0.5 ? "peace" : "war"), (rand() < 0.5 ? "trade" : "labour"), 13 + i % 37 }' >"$corpus/$split.txt"
done

section "train_lm --device cuda: GPT-2-small size, context 1024, 200 steps"
layers=12 channels=768 heads=12 context=1024 batch=8 vocab=2048
record train_lm 300 "$build/apps/train_lm" --device cuda --corpus "$corpus" --out "$work/gpt2s" --pe ape \
  --context $context --batch $batch --steps 200 --set layers=$layers --set channels=$channels --set heads=$heads \
  --set vocab_size=$vocab --set dropout=0 --set warmup=20 --set log_every=20 --set eval_every=200 \
  --set valid_tokens=8192
if [ -f "$work/gpt2s/metrics.jsonl" ]; then
  # MFU = model FLOP/s / peak: per token 6·N for the weights' matmuls (forward and backward) plus
  # 6·L·T·C for causal attention's two T×T products, against the TF32 peak bench_gpu printed.
  python3 - "$work/gpt2s/metrics.jsonl" "$layers" "$channels" "$context" "$vocab" "${peak_tf32:-0}" <<'EOF' | tee -a "$out"
import json, sys
path, L, C, T, V, peak = sys.argv[1], *map(int, sys.argv[2:6]), float(sys.argv[6])
rates = [json.loads(l)["tokens_per_s"] for l in open(path) if '"tokens_per_s"' in l]
if not rates:
    sys.exit("no tokens_per_s in " + path)
rate = sorted(rates)[len(rates) // 2]
params = L * 12 * C * C + V * C + T * C
flops = rate * (6 * params + 6 * L * T * C)
mfu = f"{100 * flops / (peak * 1e12):.1f}% of the TF32 peak ({peak} TFLOP/s)" if peak else "unknown (GPU not in bench_gpu's peak table)"
print(f"\ntrain_lm: median {rate:,.0f} tokens/s over {len(rates)} logged steps, "
      f"{flops / 1e12:.1f} TFLOP/s of model FLOPs, MFU {mfu}; {params / 1e6:.1f} M parameters")
EOF
fi

section "1 GPU against 2 GPUs"
if ((gpus >= 2)); then
  # TF32 off: the comparison is to f32 rounding (tests/apps/compare_runs.py, 1e-6 relative).
  tiny=(--device cuda --tf32 0 --corpus "$corpus" --context 64 --batch 8 --steps 6 --pe rope --set vocab_size=512
        --set layers=2 --set channels=64 --set heads=4 --set dropout=0 --set warmup=2 --set log_every=1
        --set eval_every=6 --set valid_tokens=256)
  record one_gpu 120 "$build/apps/train_lm" "${tiny[@]}" --out "$work/one"
  record two_gpus 120 "$mpiexec" --allow-run-as-root -np 2 "$build/apps/train_lm" "${tiny[@]}" --out "$work/two"
  record compare 60 python3 tests/apps/compare_runs.py "$work/one" "$work/two" 6
else
  echo "one GPU: skipped" | tee -a "$out"
fi

{
  echo
  echo "Total: $((SECONDS - start)) s, $failures failed step(s)."
} >>"$out"
cp "$out" "$report"
echo "gpu_check: $failures failed step(s) in $((SECONDS - start)) s; report in $report"
((failures == 0))
