# Sourced by the language-model app tests. tiny_corpus DIR TRAIN_LINES writes DIR/{train,valid,test}.txt
# of one repeated sentence pattern (valid and test a tenth as long), enough for a 300-token BPE.
tiny_corpus() {
  local dir="$1" split lines i
  mkdir -p "$dir"
  for split in train valid test; do
    lines="$2"; [ "$split" != train ] && lines=$(($2 / 10))
    for ((i = 0; i < lines; i++)); do
      echo "In the year $((1790 + i % 230)) the $split address spoke of peace, trade and the union of states."
    done > "$dir/$split.txt"
  done
}

# tiny_seqpe_run_options DIR LAYERS sets the array tiny_seqpe_run: the train_lm options of a tiny
# SeqPE GPT (width 32, 2 heads, LAYERS layers) trained 4 steps of 4 x 16 tokens on the tiny_corpus in
# DIR, logging every step; a test that compares runs of it adds the one option it varies.
tiny_seqpe_run_options() {
  tiny_seqpe_run=(--corpus "$1" --context 16 --batch 4 --steps 4 --lr 3e-3 --set vocab_size=280 --set layers="$2"
                  --set channels=32 --set heads=2 --set warmup=1 --set log_every=1 --set eval_every=4
                  --set valid_tokens=64 --set seqpe_max_position=100 --set seqpe_layers=1 --pe seqpe)
}

# logged_losses RUN_DIR: the losses the run logged (RUN_DIR/metrics.jsonl), space-separated.
logged_losses() { grep -o '"loss":[^,}]*' "$1/metrics.jsonl" | cut -d: -f2 | tr '\n' ' '; }
