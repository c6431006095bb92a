"""SeqPE's α = 0 ablation without retraining: a copy of a run's best checkpoint whose model.json sets
the attn_scalar weight α (`scalar_scale` of the `model` section's position-encoding options, which
is what loading builds) to 0, so that eval_lm scores the same weights with the position term
removed. Used by scripts/reproduce_lm.sh and scripts/position_signal_table.py.
Usage: seqpe_ablation.py RUN_DIR OUT_DIR   (prints the copy's checkpoint path)"""
import json
import os
import shutil
import sys


def alpha_zero_copy(run_dir, out_dir):
    """Writes OUT_DIR/best.ckpt.safetensors and OUT_DIR/best.model.json (α = 0) from RUN_DIR's
    best checkpoint; returns the checkpoint's path. A `scalar_scale` that the run config states is
    set to 0 too, since loading refuses a model section that contradicts the config section."""
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    checkpoint = os.path.join(out_dir, "best.ckpt.safetensors")
    shutil.copy(os.path.join(run_dir, "best.ckpt.safetensors"), checkpoint)
    with open(os.path.join(run_dir, "best.model.json")) as f:
        model_json = json.load(f)
    model_json["model"]["position_encoding_options"]["scalar_scale"] = 0.0
    if "scalar_scale" in model_json["config"]["seqpe"]:
        model_json["config"]["seqpe"]["scalar_scale"] = 0.0
    with open(os.path.join(out_dir, "best.model.json"), "w") as f:
        json.dump(model_json, f)
    return checkpoint


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(alpha_zero_copy(sys.argv[1], sys.argv[2]))
