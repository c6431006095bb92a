#!/usr/bin/env bash
# Checks that every repository file a code comment or a document points to exists.
#
# Reads the comments of the sources (C++/CUDA `//` and `/* */`, `#` in shell, Python and CMake)
# and the whole of every markdown file, and finds the paths in them:
#   - paths under a top-level folder of the repository (`ops/cpu/gemm.cpp`, `docs/seqpe.md`,
#     `engine/optim/`), resolved from the repository root or from the citing file's folder;
#   - brace lists and globs (`ops/layernorm.{h,cpp}`, `docs/results/*.md`): every expansion must
#     exist, a glob must match something;
#   - bare document names (`README.md`): a tracked file of that name, or a name the programs write
#     (it occurs in a string literal of a source, as eval_qa's table does); bare header and script
#     names are not checked, since comments name outside ones (`jpeglib.h`, llm.c's files);
#   - `../` paths (markdown links and comments), resolved from the citing file's folder; one that
#     leaves the repository is reported, since the repository must stand alone;
#   - a markdown anchor (`docs/method.md#random-shift`, `(#quirks)`): the target file must have a
#     heading with that GitHub slug (or an explicit `<a id=...>`).
# Paths with placeholders (`<name>`, `$VAR`, `{L}`) and paths git ignores (build outputs, data)
# are skipped. Prints `file:line: ...` for each missing target and exits 1 if there is any.
#
# Usage: scripts/check_doc_refs.sh [repository root, default: this script's parent folder]
set -euo pipefail

root=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
exec python3 - "$root" <<'PYTHON'
import glob, itertools, os, re, subprocess, sys

root = os.path.abspath(sys.argv[1])
os.chdir(root)

def tracked_files():
    try:
        out = subprocess.run(['git', 'ls-files', '-z'], check=True, capture_output=True).stdout
        return [f for f in out.decode().split('\0') if f and os.path.exists(f)]
    except (OSError, subprocess.CalledProcessError):
        return [os.path.relpath(os.path.join(d, f), '.') for d, _, fs in os.walk('.')
                if '/.git' not in d + '/' and not d.startswith('./build') for f in fs]

files = tracked_files()
basenames = {os.path.basename(f) for f in files}
top_folders = {f.split('/')[0] for f in files if '/' in f}
SOURCE = re.compile(r'(\.(h|hpp|cpp|cc|cu|cuh|py|sh|cmake)|CMakeLists\.txt|\.ci/run)$')
BARE_EXT = re.compile(r'^[\w-]+(\.[\w-]+)*\.md$')
PATH_EXT = re.compile(r'\.(h|hpp|cpp|cc|cu|cuh|md|py|sh|txt|json|cmake|csv|svg|tsv|safetensors|yml|yaml)$')
TOKEN = re.compile(r'(?<![\w./~$<>-])((?:\.\./)*[\w.{},*-]+(?:/[\w.{},*-]+)*/?)(#[\w-]+)?')

def comment_text(path, lines):
    """Per line, the text of its comments (C family, or '#' languages), strings left out."""
    c_family = re.search(r'\.(h|hpp|cpp|cc|cu|cuh)$', path) is not None
    in_block = False
    for text in lines:
        out, i, quote = [], 0, None
        while i < len(text):
            ch = text[i]
            if in_block:
                end = text.find('*/', i)
                out.append(text[i:] if end < 0 else text[i:end])
                if end < 0: break
                in_block, i = False, end + 2
                continue
            if quote:
                if ch == '\\': i += 2; continue
                if ch == quote: quote = None
            elif ch in '"\'' and not (ch == "'" and c_family and i and text[i - 1].isalnum()):
                quote = ch
            elif c_family and text.startswith('//', i):
                out.append(text[i + 2:]); break
            elif c_family and text.startswith('/*', i):
                in_block, i = True, i + 2; continue
            elif not c_family and ch == '#' and (i == 0 or text[i - 1] in ' \t'):
                out.append(text[i + 1:]); break
            i += 1
        yield ' '.join(out)

def expand_braces(path):
    m = re.search(r'\{([^{}]*,[^{}]*)\}', path)
    if not m: return [path]
    return list(itertools.chain.from_iterable(
        expand_braces(path[:m.start()] + alt + path[m.end():]) for alt in m.group(1).split(',')))

def slug(heading):
    s = re.sub(r'`|\*\*|\*|__|\[|\]\([^)]*\)', '', heading.strip()).lower()
    s = re.sub(r'[^\w\- ]', '', s)
    return s.replace(' ', '-')

anchor_cache = {}
def anchors(md):
    if md not in anchor_cache:
        found, counts, fence = set(), {}, False
        for text in open(md, encoding='utf-8', errors='replace'):
            if text.lstrip().startswith('```'): fence = not fence; continue
            if fence: continue
            m = re.match(r'#{1,6}\s+(.*?)\s*#*\s*$', text)
            if m:
                s = slug(m.group(1)); n = counts.get(s, 0); counts[s] = n + 1
                found.add(s if n == 0 else f'{s}-{n}')
            found.update(re.findall(r'<a\s+(?:id|name)="([^"]+)"', text))
        anchor_cache[md] = found
    return anchor_cache[md]

written = None
def written_names():
    """Bare file names occurring in the string literals of the sources: outputs of the programs."""
    global written
    if written is None:
        written = set()
        for f in files:
            if SOURCE.search(f):
                for literal in re.findall(r'"([^"\n]*)"', open(f, encoding='utf-8', errors='replace').read()):
                    written.update(re.findall(r'[\w.-]+\.md\b', literal))
    return written

def resolve(citing, target):
    """The existing repository paths `target` names, [] if none; None if it is not checked."""
    here = os.path.dirname(citing)
    if target.startswith('../'):
        full = os.path.normpath(os.path.join(here, target))
        if full.startswith('..'): return 'outside'
        bases = [full]
    elif '/' in target.rstrip('/'):
        if target.split('/')[0] not in top_folders: return None
        bases = [target, os.path.normpath(os.path.join(here, target))]
    else:
        if not BARE_EXT.match(target): return None
        if target in basenames or target in written_names(): return [target]
        return []
    for base in bases:
        hits = glob.glob(base) if '*' in base else ([base] if os.path.exists(base) else [])
        if hits: return hits
    return []

def ignored(path):
    return subprocess.run(['git', 'check-ignore', '-q', path], capture_output=True).returncode == 0

problems = []
def check(citing, lineno, token, anchor):
    if re.search(r'[<>$]|\{[^,}]*\}', token) or token.startswith(('build/', 'runs/')): return
    token = token.rstrip('.,')
    if '/' not in token.rstrip('/') and not BARE_EXT.match(token): return
    for path in expand_braces(token):
        if '/' in path and not path.endswith('/') and not PATH_EXT.search(path) and '*' not in path:
            continue  # a folder-like word ("cpu/cuda"), a command ("apps/bench"), not a file reference
        hits = resolve(citing, path)
        if hits is None: continue
        if hits == 'outside':
            problems.append(f'{citing}:{lineno}: {path} is outside the repository'); continue
        if not hits:
            if not ignored(path): problems.append(f'{citing}:{lineno}: missing file {path}')
            continue
        if anchor and hits[0].endswith('.md') and anchor[1:] not in anchors(hits[0]):
            problems.append(f'{citing}:{lineno}: {hits[0]} has no heading for {anchor}')

for f in sorted(files):
    is_md = f.endswith('.md')
    if not (is_md or SOURCE.search(f)) or f.startswith('third_party/') and not SOURCE.search(f):
        continue
    lines = open(f, encoding='utf-8', errors='replace').read().split('\n')
    texts = lines if is_md else comment_text(f, lines)
    for lineno, text in enumerate(texts, 1):
        if not text: continue
        if is_md:
            for m in re.finditer(r'\]\(([^)\s]*)\)', text):  # markdown links, relative to the file
                target, _, anchor = m.group(1).partition('#')
                if re.match(r'[a-z]+:', target): continue
                if not target:
                    if anchor and anchor not in anchors(f):
                        problems.append(f'{f}:{lineno}: no heading for #{anchor}')
                    continue
                full = os.path.normpath(os.path.join(os.path.dirname(f), target))
                if full.startswith('..'):
                    problems.append(f'{f}:{lineno}: {target} is outside the repository')
                elif not os.path.exists(full):
                    problems.append(f'{f}:{lineno}: missing file {target}')
                elif anchor and full.endswith('.md') and anchor not in anchors(full):
                    problems.append(f'{f}:{lineno}: {target} has no heading for #{anchor}')
            text = re.sub(r'\]\([^)\s]*\)', ']', text)
        for m in TOKEN.finditer(text):
            check(f, lineno, m.group(1), m.group(2))

for p in problems: print(p)
if problems:
    print(f'check_doc_refs: {len(problems)} reference(s) to missing files or anchors', file=sys.stderr)
    sys.exit(1)
print('check_doc_refs: every file and anchor referenced from comments and docs exists')
PYTHON
