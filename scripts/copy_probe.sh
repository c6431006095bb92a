#!/usr/bin/env bash
# Does a language model copy from its context? The probe behind docs/results/qa.md's diagnosis.
#
# Builds two corpora from the same random words: "repeated", where each line is WORDS random words
# followed by the same WORDS words again, and "fresh", where the second WORDS are new random words. A
# model with induction heads (attend to what followed the previous occurrence of the current token,
# copy it) predicts the repeated halves almost exactly, so its perplexity on "repeated" falls far
# below that on "fresh"; a model that does not copy scores both alike. Words are drawn uniformly
# from the corpus's 3000 most frequent alphabetic words, so nothing is predictable except the repeat.
#
# eval_lm scores the lines as one stream cut into windows of LENGTH tokens, and a repeated token can
# be copied only when its first occurrence lies in the same window, so a line must be well shorter
# than the window for the ratio to show copying. On KJV with its 2048-token BPE these words take
# ~2.3 tokens each: 12 words a half make lines of ~55 tokens, and about 40 % of all scored tokens are
# copyable at LENGTH 128, so a model that copies them perfectly scores a ratio of ~0.1 and 0.3 means
# about 3 nats gained per copyable token. (With 30 words a half, the default before 2026-12-07, a
# line of ~138 tokens overflowed the window: even perfect copying gave ~0.2 there.)
#
# Usage: bash scripts/copy_probe.sh RUN/best.ckpt.safetensors [RUN2/best.ckpt.safetensors ...]
# Environment: CORPUS [data/corpora/sotu] (its train.txt supplies the words; the checkpoints'
#   tokenizer directory, CORPUS/bpe_$VOCAB, is reused); VOCAB [4096]; LENGTH [128] evaluation
#   length; WORDS [12] random words per half line; LINES [400]; SEED [1]; OUT [runs/copy_probe];
#   BUILD [build/release].
set -euo pipefail
export LC_ALL=C  # one collation for sort and join
cd "$(dirname "$0")/.."

(($# > 0)) || { echo "usage: $0 CHECKPOINT [CHECKPOINT ...]" >&2; exit 2; }
CORPUS=${CORPUS:-data/corpora/sotu}
VOCAB=${VOCAB:-4096}
LENGTH=${LENGTH:-128}
WORDS=${WORDS:-12}
LINES=${LINES:-400}
SEED=${SEED:-1}
OUT=${OUT:-runs/copy_probe}
BUILD=${BUILD:-build/release}
TOKENIZER=$CORPUS/bpe_$VOCAB
for file in "$CORPUS/train.txt" "$TOKENIZER/vocab.json" "$TOKENIZER/merges.txt"; do
  [[ -f $file ]] || { echo "copy_probe: $file is missing (train a model on $CORPUS first)" >&2; exit 1; }
done
[[ -x $BUILD/apps/eval_lm ]] || cmake --build "$BUILD" --target eval_lm

mkdir -p "$OUT"
tr -cs 'A-Za-z' '\n' <"$CORPUS/train.txt" | grep . | sort | uniq -c | sort -k1,1nr -k2 |
  awk 'NR <= 3000 {print $2}' >"$OUT/words.txt"

# One corpus directory per kind: the same text as all three splits, the checkpoints' tokenizer files
# beside it (so text_corpus tokenises with them instead of training one).
for kind in repeated fresh; do
  dir=$OUT/$kind
  rm -rf "$dir" && mkdir -p "$dir"
  cp "$TOKENIZER/vocab.json" "$TOKENIZER/merges.txt" "$dir/"
  awk -v lines="$LINES" -v words="$WORDS" -v seed="$SEED" -v repeated=$([[ $kind == repeated ]] && echo 1 || echo 0) '
    { word[n++] = $0 }
    END {
      srand(seed)
      for (l = 0; l < lines; ++l) {
        first = ""; second = ""
        for (i = 0; i < words; ++i) first = first (i ? " " : "") word[int(rand() * n)]
        for (i = 0; i < words; ++i) second = second (i ? " " : "") word[int(rand() * n)]
        print first " " (repeated ? first : second) "."
      }
    }' "$OUT/words.txt" >"$dir/test.txt"
  cp "$dir/test.txt" "$dir/train.txt" && cp "$dir/test.txt" "$dir/valid.txt"
done

args=()
for checkpoint in "$@"; do args+=(--checkpoint "$checkpoint"); done
for kind in repeated fresh; do
  "$BUILD/apps/eval_lm" "${args[@]}" --corpus "$OUT/$kind" --split test --lengths "$LENGTH" \
    --csv "$OUT/$kind.csv" >"$OUT/$kind.log"
done

# run,pe,split,length,tokens,nll_per_token,token_ppl -> one row per run.
echo "| run | pe | fresh PPL | repeated PPL | repeated / fresh |"
echo "|---|---|---:|---:|---:|"
join -t, <(tail -n +2 "$OUT/fresh.csv" | cut -d, -f1,2,7 | sort) \
  <(tail -n +2 "$OUT/repeated.csv" | cut -d, -f1,7 | sort) |
  awk -F, '{printf "| %s | %s | %.1f | %.1f | %.3f |\n", $1, $2, $3, $4, $4 / $3}'
echo "(length $LENGTH, $WORDS words a half line; logs and CSVs in $OUT)"
