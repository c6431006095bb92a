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
#     heading with that GitHub slug (or an explicit `<a id=...>`); a markdown link to a line of a
#     source (`(../ops/layernorm.cpp#L79)`) must point inside the file.
# Paths with placeholders (`<name>`, `$VAR`, `{L}`) and paths git ignores (build outputs, data)
# are skipped. Prints `file:line: ...` for each missing target and exits 1 if there is any.
# It first runs itself on a small made-up tree whose broken references are known, and exits 2 if
# it does not report exactly those: a check that cannot fail is no check.
#
# Usage: scripts/check_doc_refs.sh [repository root, default: this script's parent folder]
set -euo pipefail

root=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
exec python3 - "$root" <<'PYTHON'
import glob, itertools, os, re, subprocess, sys, tempfile

SOURCE = re.compile(r'(\.(h|hpp|cpp|cc|cu|cuh|py|sh|cmake)|CMakeLists\.txt|\.ci/run)$')
C_FAMILY = re.compile(r'\.(h|hpp|cpp|cc|cu|cuh)$')
BARE_DOC = re.compile(r'^[\w-]+(\.[\w-]+)*\.md$')
FILE_EXT = re.compile(r'\.(h|hpp|cpp|cc|cu|cuh|md|py|sh|txt|json|cmake|csv|svg|tsv|safetensors|yml|yaml)$')
TOKEN = re.compile(r'(?<![\w./~$<>-])((?:\.\./)*[\w.{},*-]+(?:/[\w.{},*-]+)*/?)(#[\w-]+)?')
LINK = re.compile(r'\]\(([^)\s]*)\)')


def comment_text(path, lines):
    """Per line, the text of its comments (C family, or '#' languages), string literals left out."""
    c_family = C_FAMILY.search(path) is not None
    in_block = False
    for text in lines:
        out, i, quote = [], 0, None
        while i < len(text):
            ch = text[i]
            if in_block:
                end = text.find('*/', i)
                out.append(text[i:] if end < 0 else text[i:end])
                if end < 0:
                    break
                in_block, i = False, end + 2
                continue
            if quote:
                if ch == '\\':
                    i += 2
                    continue
                if ch == quote:
                    quote = None
            elif ch in '"\'' and not (ch == "'" and c_family and i and text[i - 1].isalnum()):
                quote = ch  # (a C++14 digit separator, 1'000, is not a quote)
            elif c_family and text.startswith('//', i):
                out.append(text[i + 2:])
                break
            elif c_family and text.startswith('/*', i):
                in_block, i = True, i + 2
                continue
            elif not c_family and ch == '#' and (i == 0 or text[i - 1] in ' \t'):
                out.append(text[i + 1:])
                break
            i += 1
        yield ' '.join(out)


def expand_braces(path):
    """`a.{h,cpp}` -> [`a.h`, `a.cpp`], nested and repeated lists included."""
    m = re.search(r'\{([^{}]*,[^{}]*)\}', path)
    if not m:
        return [path]
    return list(itertools.chain.from_iterable(
        expand_braces(path[:m.start()] + alt + path[m.end():]) for alt in m.group(1).split(',')))


def slug(heading):
    """GitHub's anchor of a markdown heading: markup dropped, lower case, punctuation out, '-' for spaces."""
    s = re.sub(r'`|\*\*|\*|__|\[|\]\([^)]*\)', '', heading.strip()).lower()
    return re.sub(r'[^\w\- ]', '', s).replace(' ', '-')


class Tree:
    """The files of one repository checkout and the references between them."""

    def __init__(self, root):
        self.root = root
        self.git = os.path.isdir(os.path.join(root, '.git')) or os.path.isfile(os.path.join(root, '.git'))
        self.files = self.list_files()
        self.basenames = {os.path.basename(f) for f in self.files}
        self.top_folders = {f.split('/')[0] for f in self.files if '/' in f}
        self.anchor_cache, self.line_counts, self.written = {}, {}, None
        self.problems = []

    def path(self, relative):
        return os.path.join(self.root, relative)

    def list_files(self):
        if self.git:
            out = subprocess.run(['git', '-C', self.root, 'ls-files', '-z'], check=True, capture_output=True).stdout
            return sorted(f for f in out.decode().split('\0') if f and os.path.exists(self.path(f)))
        return sorted(os.path.relpath(os.path.join(d, f), self.root) for d, _, names in os.walk(self.root)
                      for f in names)

    def read(self, relative):
        with open(self.path(relative), encoding='utf-8', errors='replace') as f:
            return f.read()

    def exists(self, relative):
        return os.path.exists(self.path(relative))

    def ignored(self, relative):
        return self.git and subprocess.run(['git', '-C', self.root, 'check-ignore', '-q', relative],
                                           capture_output=True).returncode == 0

    def anchors(self, md):
        if md not in self.anchor_cache:
            found, counts, fence = set(), {}, False
            for text in self.read(md).split('\n'):
                if text.lstrip().startswith('```'):
                    fence = not fence
                    continue
                if fence:
                    continue
                m = re.match(r'#{1,6}\s+(.*?)\s*#*\s*$', text)
                if m:
                    s = slug(m.group(1))
                    n = counts.get(s, 0)
                    counts[s] = n + 1
                    found.add(s if n == 0 else f'{s}-{n}')
                found.update(re.findall(r'<a\s+(?:id|name)="([^"]+)"', text))
            self.anchor_cache[md] = found
        return self.anchor_cache[md]

    def line_count(self, relative):
        if relative not in self.line_counts:
            self.line_counts[relative] = self.read(relative).count('\n') + 1
        return self.line_counts[relative]

    def written_names(self):
        """Bare .md names in the sources' string literals: files the programs write."""
        if self.written is None:
            self.written = set()
            for f in self.files:
                if SOURCE.search(f):
                    for literal in re.findall(r'"([^"\n]*)"', self.read(f)):
                        self.written.update(re.findall(r'[\w.-]+\.md\b', literal))
        return self.written

    def resolve(self, citing, target):
        """The repository paths `target` names ([] if none exists), 'outside', or None if not checked."""
        here = os.path.dirname(citing)
        if target.startswith('../'):
            full = os.path.normpath(os.path.join(here, target))
            if full.startswith('..'):
                return 'outside'
            bases = [full]
        elif '/' in target.rstrip('/'):
            if target.split('/')[0] not in self.top_folders:
                return None
            bases = [target, os.path.normpath(os.path.join(here, target))]
        else:
            if not BARE_DOC.match(target):
                return None
            return [target] if target in self.basenames or target in self.written_names() else []
        for base in bases:
            if '*' in base:
                hits = [os.path.relpath(h, self.root) for h in glob.glob(self.path(base))]
            else:
                hits = [base] if self.exists(base) else []
            if hits:
                return hits
        return []

    def report(self, citing, lineno, message):
        self.problems.append(f'{citing}:{lineno}: {message}')

    def check_token(self, citing, lineno, token, anchor):
        """A path found in prose or a comment, with its #anchor if any."""
        if re.search(r'[<>$]|\{[^,}]*\}', token) or token.startswith(('build/', 'runs/')):
            return  # a placeholder or a build output
        token = token.rstrip('.,')
        if '/' not in token.rstrip('/') and not BARE_DOC.match(token):
            return
        for path in expand_braces(token):
            if '/' in path and not path.endswith('/') and not FILE_EXT.search(path) and '*' not in path:
                continue  # a folder-like word ("cpu/cuda") or a command ("apps/bench"), not a file
            hits = self.resolve(citing, path)
            if hits is None:
                continue
            if hits == 'outside':
                self.report(citing, lineno, f'{path} is outside the repository')
            elif not hits:
                if not self.ignored(path):
                    self.report(citing, lineno, f'missing file {path}')
            elif anchor and hits[0].endswith('.md') and anchor[1:] not in self.anchors(hits[0]):
                self.report(citing, lineno, f'{hits[0]} has no heading for {anchor}')

    def check_link(self, citing, lineno, target):
        """A markdown link (target relative to the citing file, as a renderer reads it)."""
        path, _, anchor = target.partition('#')
        if re.match(r'[a-z]+:', path):
            return  # a URL
        if not path:
            if anchor and anchor not in self.anchors(citing):
                self.report(citing, lineno, f'no heading for #{anchor}')
            return
        full = os.path.normpath(os.path.join(os.path.dirname(citing), path))
        if full.startswith('..'):
            self.report(citing, lineno, f'{path} is outside the repository')
        elif not self.exists(full):
            self.report(citing, lineno, f'missing file {path}')
        elif anchor and full.endswith('.md') and anchor not in self.anchors(full):
            self.report(citing, lineno, f'{path} has no heading for #{anchor}')
        elif anchor and re.fullmatch(r'L\d+', anchor) and int(anchor[1:]) > self.line_count(full):
            self.report(citing, lineno, f'{path} has {self.line_count(full)} lines, not {anchor[1:]}')

    def check(self):
        for f in self.files:
            is_md = f.endswith('.md')
            if not (is_md or SOURCE.search(f)):
                continue
            lines = self.read(f).split('\n')
            for lineno, text in enumerate(lines if is_md else comment_text(f, lines), 1):
                if not text:
                    continue
                if is_md:
                    for m in LINK.finditer(text):
                        self.check_link(f, lineno, m.group(1))
                    text = LINK.sub(']', text)
                for m in TOKEN.finditer(text):
                    self.check_token(f, lineno, m.group(1), m.group(2))
        return self.problems


def self_test():
    """Runs the check on a made-up tree; returns what differs from the known answer."""
    tree = {
        'docs/a.md': '# Title\n## Random shift\n'
                     'Good: `docs/a.md#random-shift`, [self](#title), [code](../ops/x.cpp#L2), `ops/{x.cpp,y.h}`.\n'
                     'Bad: `docs/a.md#nope`, [b](b.md), [far](../ops/x.cpp#L9), `ops/z.{h,cpp}`, `ops/*.cu`,\n'
                     'FACTS.md, ../../outside.md, [up](../../up.md). Skipped: `runs/<pe>/x.md`, `docs/{L}.md`.\n'
                     '```\n## Not a heading\n```\n',
        'ops/x.cpp': '// See ops/y.h, docs/a.md#random-shift and docs/a.md#not-a-heading.\n'
                     'const char* s = "docs/none.md";  // <immintrin.h> and "docs/a.md"\n',
        'ops/y.h': '/* ops/gone.h\n   docs/a.md */\n',
        'ops/z.h': '',
    }
    expected = {
        'docs/a.md:4: docs/a.md has no heading for #nope',
        'docs/a.md:4: missing file b.md',
        'docs/a.md:4: ../ops/x.cpp has 3 lines, not 9',
        'docs/a.md:4: missing file ops/z.cpp',
        'docs/a.md:4: missing file ops/*.cu',
        'docs/a.md:5: missing file FACTS.md',
        'docs/a.md:5: ../../outside.md is outside the repository',
        'docs/a.md:5: ../../up.md is outside the repository',
        'ops/x.cpp:1: docs/a.md has no heading for #not-a-heading',
        'ops/y.h:1: missing file ops/gone.h',
    }
    with tempfile.TemporaryDirectory() as scratch:
        for name, text in tree.items():
            os.makedirs(os.path.dirname(os.path.join(scratch, name)), exist_ok=True)
            with open(os.path.join(scratch, name), 'w') as f:
                f.write(text)
        found = set(Tree(scratch).check())
    return sorted(expected - found), sorted(found - expected)


missed, spurious = self_test()
if missed or spurious:
    for p in missed:
        print(f'check_doc_refs self-test: not reported: {p}', file=sys.stderr)
    for p in spurious:
        print(f'check_doc_refs self-test: reported wrongly: {p}', file=sys.stderr)
    sys.exit(2)

problems = Tree(os.path.abspath(sys.argv[1])).check()
for p in problems:
    print(p)
if problems:
    print(f'check_doc_refs: {len(problems)} reference(s) to missing files or anchors', file=sys.stderr)
    sys.exit(1)
print('check_doc_refs: every file and anchor referenced from comments and docs exists')
PYTHON
