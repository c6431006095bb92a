#!/usr/bin/env python3
"""The table of docs/seqpe.md's position-signal experiments (scripts/position_signal_experiments.sh):
per run, the validation perplexity of the best checkpoint, the same with α set to 0 in a copy of its
model.json's model section (the attn_scalar term removed, no retraining), and the position and
content spreads logged at each validation (means over layers and heads).
Usage: scripts/position_signal_table.py RUN_DIR [NAME...]   (BUILD [build/release] holds eval_lm)"""
import json, os, subprocess, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from seqpe_ablation import alpha_zero_copy  # noqa: E402

root = sys.argv[1]
eval_lm = os.path.join(os.environ.get("BUILD", "build/release"), "apps", "eval_lm")
runs = sys.argv[2:] or sorted(d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, "metrics.jsonl")))

def ppl(checkpoint):
    out = subprocess.run([eval_lm, "--checkpoint", checkpoint, "--lengths", "128", "--split", "valid",
                          "--max-tokens", "16384"], capture_output=True, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    for line in out.stdout.splitlines():
        if line.startswith("| 128 "):
            return float(line.split("|")[4])
    raise RuntimeError(out.stdout + out.stderr)

labels = {
    "base": "reference settings (λ_ct = λ_tr = 0.1, PE_MAX_POSITION 20000, α 1, single W_qk init 0.02, lr 1e-3)",
    "nope": "NoPE, for reference",
    "lr_5e-5": "lr 5e-5 (the reference script's)",
    "wd_0.1": "weight decay 0.1",
    "warmup_100": "warm-up 100 steps",
    "proj_none": "qk_projection none (pq = pk = e)",
    "alpha_30": "α = 30",
    "enc_width_256": "encoder width 256",
    "clip_qk_main": "W_qk clipped with the main model, as the reference",
    "qk_init_0.2": "W_qk init std 0.2",
    "enc_init_0.1": "encoder and W_qk init std 0.1",
    "sin": "sinusoidal PE, for reference",
    "max_pos_2048": "PE_MAX_POSITION 2048",
    "transfer_off": "distillation loss off (λ_tr = 0)",
    "contrastive_off": "contrastive loss off (λ_ct = 0)",
    "aux_off": "both auxiliary losses off",
}
print("| setting | valid PPL | PPL with α = 0 | position spread by step | content spread | position / content |")
print("|---|---:|---:|---|---:|---:|")
for run in runs:
    d = os.path.join(root, run)
    rows = [json.loads(l) for l in open(os.path.join(d, "metrics.jsonl"))]
    valid = [r["valid_ppl"] for r in rows if "valid_ppl" in r]
    signal = [(r["step"], r["position_signal"]) for r in rows if r.get("position_signal")]
    best = os.path.join(d, "best.ckpt.safetensors")
    base = ppl(best)
    ablated = "-"
    if signal:
        ablated = f"{ppl(alpha_zero_copy(d, os.path.join(d, 'ablated'))):.3f}"
    spreads = " / ".join(f"{s['mean']['position_spread']:.2e}" for _, s in signal)
    last = signal[-1][1]["mean"] if signal else None
    content = f"{last['content_spread']:.3f}" if last else "-"
    ratio = f"{last['position_spread'] / last['content_spread']:.1e}" if last else "-"
    assert abs(base - min(valid)) < 1e-3, (run, base, min(valid))  # the best checkpoint is what was evaluated
    print(f"| {labels.get(run, run)} | {base:.3f} | {ablated} | {spreads or '-'} | {content} | {ratio} |")
    sys.stdout.flush()
