# Sourced by the language-model app tests: tiny_corpus DIR TRAIN_LINES writes DIR/{train,valid,test}.txt
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
