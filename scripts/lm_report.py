#!/usr/bin/env python3
"""The computed sections of docs/results/lm.md, printed as markdown (scripts/reproduce_lm.sh calls it):
from eval_lm's CSVs on the test split, the perplexity per method (seeds averaged, their spread
shown), PPL(L) / PPL(1x), the gates of docs/seqpe.md ("Baselines the comparison needs") with pass or
fail and the verdict they allow, the loss by position inside the longest chunks, and the scale of
the run against the paper's.

Usage: scripts/lm_report.py OUT
Reads OUT/eval_test.csv and OUT/eval_test_positions.csv (eval_lm), and OUT/<run>/run.json and
OUT/<run>/train.log (train_lm). A run is named after its directory; runs that differ only by a
`_seed<N>` part of their name are seeds of one method, and a `_alpha0` run is the run of that name
without it, scored with SeqPE's term removed (α = 0 in its model.json)."""
import csv
import json
import os
import re
import sys
from collections import OrderedDict

LABELS = {
    "seqpe_alpha0": "seqpe, α = 0",
    "seqpe_no_contrastive": "seqpe, contrastive off",
    "seqpe_no_contrastive_alpha0": "seqpe, contrastive off, α = 0",
}
# The paper's language model (docs/method.md#language-modelling): GPT-2 small on WikiText-103.
PAPER = {
    "model": "GPT-2 small: 12 layers, width 768 (124M parameters)",
    "corpus": "WikiText-103 (103M training tokens)",
    "context": "512",
    "tokens": "100,000 steps x 128 sequences x 512 = 6.6B",
    "lengths": "512 to 16,384 (32x)",
}


def method_of(run):
    """The method a run belongs to: its name without the seed part."""
    return re.sub(r"_seed\d+", "", run)


def spread_text(values, digits):
    """The mean of a method's seeds, with half their range when there are several."""
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {(max(values) - min(values)) / 2:.{digits}f}"


def read_results(out):
    """{method: {length: [PPL per seed]}}, the lengths, and {method: {length: {bucket start: [NLL]}}}."""
    ppl, lengths = OrderedDict(), []
    with open(os.path.join(out, "eval_test.csv")) as f:
        for row in csv.DictReader(f):
            method, length = method_of(os.path.basename(os.path.dirname(row["run"]))), int(row["length"])
            ppl.setdefault(method, OrderedDict()).setdefault(length, []).append(float(row["token_ppl"]))
            if length not in lengths:
                lengths.append(length)
    buckets = {}
    with open(os.path.join(out, "eval_test_positions.csv")) as f:
        for row in csv.DictReader(f):
            method = method_of(os.path.basename(os.path.dirname(row["run"])))
            by_start = buckets.setdefault(method, {}).setdefault(int(row["length"]), OrderedDict())
            by_start.setdefault(int(row["position_start"]), []).append(float(row["nll_per_token"]))
    return ppl, sorted(lengths), buckets


def mean(values):
    return sum(values) / len(values)


def perplexity_tables(ppl, lengths):
    base = lengths[0]
    factors = [f"{length} ({length / base:g}x)" for length in lengths]
    print("## Test perplexity")
    print()
    print("Token perplexity on the test split; `a ± b`: the mean of the seeds and half their difference.")
    print()
    print("| method | seeds | " + " | ".join(factors) + " |")
    print("|---|---:|" + "---:|" * len(lengths))
    for method, by_length in ppl.items():
        seeds = len(by_length[base])
        cells = [spread_text(by_length[length], 3) for length in lengths]
        print(f"| {LABELS.get(method, method)} | {seeds} | " + " | ".join(cells) + " |")
    print()
    print(f"PPL(L) / PPL({base}), from each seed's own ratio:")
    print()
    print("| method | " + " | ".join(factors[1:]) + " |")
    print("|---|" + "---:|" * (len(lengths) - 1))
    for method, by_length in ppl.items():
        cells = [spread_text([p / b for p, b in zip(by_length[length], by_length[base])], 3) for length in lengths[1:]]
        print(f"| {LABELS.get(method, method)} | " + " | ".join(cells) + " |")
    print()


def gates(ppl, lengths):
    """The gates of docs/seqpe.md on the seed means; returns (rows, every gate passed, SeqPE's passed)."""
    first, last = lengths[0], lengths[-1]
    at = lambda method, length: mean(ppl[method][length]) if method in ppl else None
    ratio = lambda method: at(method, last) / at(method, first) if method in ppl else None
    factor = f"{last / first:g}x"
    rows = []

    def gate(name, condition, needed, measured, holds):
        missing = [m for m in needed if m not in ppl]
        if missing:
            rows.append((name, condition, "not run: " + ", ".join(missing), "not run"))
        else:
            rows.append((name, condition, measured(), "pass" if holds() else "FAIL"))

    gate("the baselines trained", "PPL(1x) of sin and APE within 10 % of NoPE's or better", ["sin", "ape", "nope"],
         lambda: f"sin {at('sin', first) / at('nope', first):.3f}, APE {at('ape', first) / at('nope', first):.3f} x NoPE",
         lambda: max(at("sin", first), at("ape", first)) <= 1.10 * at("nope", first))
    gate("the models use positions", "APE's and RoPE's PPL(1x) at least 2 % below NoPE's", ["ape", "rope", "nope"],
         lambda: f"APE {at('ape', first) / at('nope', first):.3f}, RoPE {at('rope', first) / at('nope', first):.3f} x NoPE",
         lambda: max(at("ape", first), at("rope", first)) <= 0.98 * at("nope", first))
    gate("learned APE and sin degrade", f"r({factor}) ≥ 1.5 for both", ["ape", "sin"],
         lambda: f"APE {ratio('ape'):.3f}, sin {ratio('sin'):.3f}",
         lambda: min(ratio("ape"), ratio("sin")) >= 1.5)
    gate("RoPE degrades", f"r({factor}) ≥ 1.2", ["rope"], lambda: f"{ratio('rope'):.3f}", lambda: ratio("rope") >= 1.2)
    gate("ALiBi stays flat", f"r({factor}) ≤ 1.05", ["alibi"], lambda: f"{ratio('alibi'):.3f}",
         lambda: ratio("alibi") <= 1.05)
    gate("SeqPE's term is alive", "PPL(1x) with α = 0 at least 1 % above PPL(1x)", ["seqpe", "seqpe_alpha0"],
         lambda: f"{at('seqpe_alpha0', first) / at('seqpe', first):.4f} x",
         lambda: at("seqpe_alpha0", first) >= 1.01 * at("seqpe", first))
    all_pass = all(row[3] == "pass" for row in rows)
    return rows, all_pass, rows[-1][3] == "pass"


def print_gates(ppl, lengths):
    rows, all_pass, seqpe_alive = gates(ppl, lengths)
    first, last = lengths[0], lengths[-1]
    print("## Gates")
    print()
    print(f"From the table above (seed means), r(L) = PPL(L) / PPL({first}); 1x = {first}, "
          f"{last / first:g}x = {last} (docs/seqpe.md, \"Baselines the comparison needs\").")
    print()
    print("| gate | condition | measured | result |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if "seqpe_no_contrastive" in ppl and "seqpe_no_contrastive_alpha0" in ppl:
        alive = mean(ppl["seqpe_no_contrastive_alpha0"][first]) / mean(ppl["seqpe_no_contrastive"][first])
        print(f"| (not a gate) the term of SeqPE without its contrastive loss | as the gate above | {alive:.4f} x | "
              f"{'alive' if alive >= 1.01 else 'dead'} |")
    print()
    print("**Verdict.** ", end="")
    if not seqpe_alive:
        print("**No comparison** for SeqPE: its position term is dead (or SeqPE was not run), so its row is a "
              "NoPE model in practice and says nothing about the paper's claim.")
    elif not all_pass:
        failed = [row[0] for row in rows if row[3] != "pass"]
        print("**No comparison**: the baselines do not behave as the literature says (" + "; ".join(failed) +
              "), so this run cannot tell whether SeqPE extrapolates better.")
    else:
        r_seqpe = mean(ppl["seqpe"][last]) / mean(ppl["seqpe"][first])
        others = [(m, mean(ppl[m][last]) / mean(ppl[m][first])) for m in ("ape", "sin", "rope", "alibi", "nope")]
        models = [m for m in ppl if not m.endswith("_alpha0")]  # the ablations are the same weights
        ranked = sorted(models, key=lambda m: mean(ppl[m][last]))
        print(f"Every gate holds, so the SeqPE row can be read. From {first} to {last} tokens SeqPE's perplexity "
              f"grows by x{r_seqpe:.3f} (" + ", ".join(f"{m} x{r:.3f}" for m, r in others) +
              f"); at {last} tokens it ranks {ranked.index('seqpe') + 1} of {len(ranked)} models (lowest first: " +
              "; ".join(LABELS.get(m, m) for m in ranked) + ").")
    print()


def print_position_table(buckets, ppl, lengths):
    last = lengths[-1]
    methods = [m for m in ppl if last in buckets.get(m, {})]
    print(f"## Loss by position inside the chunks of {last} tokens")
    print()
    print(f"NLL per token (seed means) of the predictions at each position bucket of the training length "
          f"inside the test chunks of {last} tokens: past the first bucket, a model scores positions it never "
          f"trained on; the plot is `lm_positions.svg`.")
    print()
    print("| positions | " + " | ".join(LABELS.get(m, m) for m in methods) + " |")
    print("|---|" + "---:|" * len(methods))
    starts = list(buckets[methods[0]][last]) if methods else []
    width = starts[1] - starts[0] if len(starts) > 1 else lengths[0]
    for start in starts:
        cells = [f"{mean(buckets[m][last][start]):.4f}" for m in methods]
        print(f"| [{start}, {start + width}) | " + " | ".join(cells) + " |")
    print()


def print_scale(out, ppl, lengths):
    runs = sorted(d for d in os.listdir(out) if os.path.isfile(os.path.join(out, d, "run.json")))
    if not runs:
        return
    with open(os.path.join(out, runs[0], "run.json")) as f:
        run = json.load(f)
    parameters, train_tokens = {}, ""
    for name in runs:
        with open(os.path.join(out, name, "train.log")) as f:
            found = re.search(r"(\d+) train tokens, (\d+) parameters", f.read())
        if found:
            train_tokens = found.group(1)
            parameters[method_of(name)] = int(found.group(2))
    tokens = run["steps"] * run["batch"] * run["context"]
    counts = sorted(set(parameters.values()))
    count_text = f"{counts[0] / 1e6:.2f}M" if len(counts) == 1 else f"{counts[0] / 1e6:.2f}M to {counts[-1] / 1e6:.2f}M"
    largest = max(parameters, key=parameters.get) if parameters else ""
    print("## Scale against the paper")
    print()
    print("| | this run | the paper |")
    print("|---|---|---|")
    print(f"| model | {run['layers']} layers, width {run['channels']}, {run['heads']} heads ({count_text} parameters"
          f"{', the most for ' + largest if len(counts) > 1 else ''}) | {PAPER['model']} |")
    print(f"| corpus | {run['corpus']}, BPE {run['vocab_size']} ({train_tokens} training tokens) | {PAPER['corpus']} |")
    print(f"| training context | {run['context']} | {PAPER['context']} |")
    print(f"| training tokens per model | {run['steps']} steps x {run['batch']} sequences x {run['context']} = "
          f"{tokens / 1e6:.2f}M | {PAPER['tokens']} |")
    print(f"| evaluation lengths | {lengths[0]} to {lengths[-1]} ({lengths[-1] / lengths[0]:g}x) | {PAPER['lengths']} |")
    print()


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    ppl, lengths, buckets = read_results(out)
    perplexity_tables(ppl, lengths)
    print_gates(ppl, lengths)
    print_position_table(buckets, ppl, lengths)
    print_scale(out, ppl, lengths)


if __name__ == "__main__":
    main()
