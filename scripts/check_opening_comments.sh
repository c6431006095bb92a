#!/usr/bin/env bash
# Checks that every tracked source file opens with a comment saying what it holds (README.md,
# "Layout"): C++/CUDA files with `//` or `/*`, shell and Python with `#` (after a `#!` line) or a
# docstring, CMake files with `#`. Files under third_party/ are not ours and are skipped. Prints the
# files that lack one and exits 1 if there is any.
# It first runs itself on a small made-up tree whose offenders are known, and exits 2 if it does not
# report exactly those: a check that cannot fail is no check.
#
# Usage: scripts/check_opening_comments.sh [repository root, default: this script's parent folder]
set -euo pipefail

root=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
exec python3 - "$root" <<'PYTHON'
import os, re, subprocess, sys, tempfile

SOURCE = re.compile(r'(\.(h|cpp|cu|py|sh|cmake)|CMakeLists\.txt)$')

def opens_with_comment(path):
    with open(path, encoding='utf-8', errors='replace') as f:
        lines = [line.strip() for line in f]
    lines = [line for line in lines if line]
    if lines and lines[0].startswith('#!'):
        lines = lines[1:]
    if not lines:
        return False
    first = lines[0]
    if path.endswith(('.h', '.cpp', '.cu')):
        return first.startswith(('//', '/*'))
    if path.endswith('.py'):
        return first.startswith(('#', '"""', "'''"))
    return first.startswith('#')

def offenders(root, files):
    return sorted(f for f in files if SOURCE.search(f) and not f.startswith('third_party/')
                  and not opens_with_comment(os.path.join(root, f)))

def tracked(root):
    out = subprocess.run(['git', '-C', root, 'ls-files'], capture_output=True, text=True, check=True)
    return out.stdout.split()

def self_test():
    cases = {'ok.h': '// what it holds\n#pragma once\n', 'bad.cpp': '#include "ok.h"\n',
             'ok.sh': '#!/bin/bash\n# what it does\n', 'bad.sh': '#!/bin/bash\nset -e\n',
             'ok.py': '"""what it does"""\n', 'bad.cu': '\n\n__global__ void k() {}\n',
             'third_party/x.cpp': 'int x;\n'}
    with tempfile.TemporaryDirectory() as tree:
        for name, text in cases.items():
            os.makedirs(os.path.dirname(os.path.join(tree, name)), exist_ok=True)
            with open(os.path.join(tree, name), 'w') as f:
                f.write(text)
        return offenders(tree, list(cases)) == ['bad.cpp', 'bad.cu', 'bad.sh']

if not self_test():
    print('check_opening_comments: the self-test on a made-up tree failed', file=sys.stderr)
    sys.exit(2)
root = sys.argv[1]
missing = offenders(root, tracked(root))
for f in missing:
    print(f'{f}:1: no opening comment saying what the file holds')
if missing:
    sys.exit(1)
print('check_opening_comments: every source opens with a comment')
PYTHON
