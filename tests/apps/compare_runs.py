#!/usr/bin/env python3
# Compares two runs of a training app (train_lm, finetune_qa) that must agree up to f32 rounding,
# e.g. 1 process against N data-parallel ranks on the same global batch: the losses logged in
# metrics.jsonl and every f32 tensor of last.ckpt.safetensors (parameters and optimizer state) to
# 1e-6 relative; with "model" as a 4th argument, the model's tensors only (a ZeRO-1 run keeps its
# optimizer state in shards under other names).
# Usage: compare_runs.py RUN_DIR_A RUN_DIR_B LOGGED_STEPS [model]
import array, json, struct, sys

def losses(run):
    return [json.loads(l)["loss"] for l in open(run + "/metrics.jsonl") if '"loss"' in l]

def tensors(path):  # safetensors: u64 header length, JSON header, raw little-endian data
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        begin, end = info["data_offsets"]
        out[name] = array.array("f", data[begin:end])
    return out

one, two, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
model_only = len(sys.argv) > 4 and sys.argv[4] == "model"
a, b = losses(one), losses(two)
assert len(a) == len(b) == steps, (a, b)
for x, y in zip(a, b):
    assert abs(x - y) <= 1e-6 * abs(x), f"losses differ: {a} vs {b}"
pa, pb = tensors(one + "/last.ckpt.safetensors"), tensors(two + "/last.ckpt.safetensors")
if model_only:
    pa, pb = ({k: v for k, v in p.items() if k.startswith("model.")} for p in (pa, pb))
assert pa.keys() == pb.keys() and len(pa) > 0
worst = 0.0
for name in pa:
    x, y = pa[name], pb[name]
    if name.endswith("attn.c_attn.bias"):
        # The key bias [C, 2C) gets a gradient of exactly 0 in exact arithmetic (softmax over keys
        # ignores a constant added to every score), so AdamW's update of it, g / sqrt(v), is f32
        # rounding noise scaled up to the learning rate: it differs between any two summation
        # orders. Its moments are compared (optim.*) with the rest.
        c = len(x) // 3
        x, y = x[:c] + x[2 * c:], y[:c] + y[2 * c:]
    scale = max(abs(v) for v in x) or 1.0
    diff = max(abs(p - q) for p, q in zip(x, y))
    worst = max(worst, diff / scale)
    assert diff <= 1e-6 * scale, f"{name}: max difference {diff}, scale {scale}"
print(f"the runs agree: losses {b}, {len(pa)} tensors, worst relative difference {worst:.2e}")
