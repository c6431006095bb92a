# Sourced by the QA app tests (qa_smoke.sh, qa_dist.sh): a generated corpus for a tiny language
# model and small SQuAD v1.1 files of questions about it.
names=(Alder Birch Cedar Dogwood Elm Fir Ginkgo Hazel Ivy Juniper Larch Maple Oak Pine Rowan Spruce Teak Willow Yew Zelkova)
passage() { echo "The tree $1 grows in zone $((10 + $2 * 7 % 80))."; }

# qa_corpus DIR: train / valid / test.txt of 200 passages each, for a tiny language model.
qa_corpus() {
  local split i
  mkdir -p "$1"
  for split in train valid test; do
    for ((i = 0; i < 200; i++)); do passage "${names[i % 20]}" "$i"; done > "$1/$split.txt"
  done
}

# squad FILE FIRST COUNT DISTRACTORS [LONG_EVERY]: questions FIRST..FIRST+COUNT-1, each gold passage
# placed at position (i mod (DISTRACTORS+1)) among DISTRACTORS other passages. The answer is the
# zone's number, or "zone <number>" for every LONG_EVERY-th question (answers of different lengths).
squad() {
  local file="$1" first="$2" count="$3" distractors="$4" long_every="${5:-0}" sep="" i j
  { printf '{"version": "1.1", "data": [{"title": "trees", "paragraphs": ['
    for ((i = first; i < first + count; i++)); do
      local gold_at=$((i % (distractors + 1))) context="" start=0 answer="$((10 + i * 7 % 80))"
      [ "$long_every" -gt 0 ] && [ $((i % long_every)) -eq 0 ] && answer="zone $answer"
      for ((j = 0; j <= distractors; j++)); do
        local k=$(( j == gold_at ? i : (i + 3 * j + 1) % 20 ))
        [ "$j" -gt 0 ] && context+=" "
        if [ "$j" -eq "$gold_at" ]; then
          local text; text="$(passage "${names[k % 20]}" "$i")"
          start=$(( ${#context} + ${#text} - ${#answer} - 1 ))
          context+="$text"
        else
          context+="$(passage "${names[k % 20]}_$j" "$((i + j + 100))")"
        fi
      done
      printf '%s{"context": "%s", "qas": [{"id": "q%d", "question": "In which zone does %s grow?", "answers": [{"text": "%s", "answer_start": %d}]}]}' \
        "$sep" "$context" "$i" "${names[i % 20]}" "$answer" "$start"
      sep=", "
    done
    printf ']}]}\n'; } > "$file"
}
