#!/usr/bin/env python3
"""Import circles between the module files of each crate: data should flow down, never back up.

    scripts/check-cycles.py [ROOT]

A crate is every directory under ROOT (default: this repository) with a Cargo.toml and a src/.
Each of its targets (src/lib.rs, src/main.rs, src/bin/*.rs, src/bin/*/main.rs) is read from its
root file down its `mod x;` declarations (x.rs or x/mod.rs, `#[path]` too; inline `mod x { }`
blocks belong to their file), so tests/, benches/ and examples/ are never read, and neither is
anything under `#[cfg(test)]` (a `mod tests { }` block, a `mod tests;` file, any other item).

A file depends on the module file a path names: `crate::a::b::C` (also in `use crate::{a, b::c}`
groups, at any depth), `super::x` (a child naming its parent counts too), `self::x`. The module is
the longest prefix of the path that is one; a path to the crate root itself is no edge (the root
declares every module and re-exports from them: a circle through it says nothing of layering), and
relative paths (`x::Y` for a child `x`) are not read. Comments and string literals are skipped,
but for a string in an attribute that is a whole path (serde's `with = "crate::x"`).

Each strongly connected component of more than one file is printed as
`CRATE: circle of N: FILE, ...`, then one indented line per edge inside it with the line of the
first path that makes it, and the exit status is 1. Otherwise it prints `no import circles`.
"""
import os
import re
import sys

SKIP_DIRS = {"target", "node_modules", "tests", "examples", "src"}
PATH_STRING = re.compile(r"\$?(crate|super|self)(::\w+)+")


# ---------------------------------------------------------------- tokens


def tokens(text):
    """(kind, value, line) for identifiers ('id'), string literals ('str', raw contents) and
    punctuation ('p'); comments, numbers, char literals and lifetimes are dropped."""
    out, i, n, line = [], 0, len(text), 1
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    line += text[i] == "\n"
                    i += 1
        elif c == '"' or (c in "bcr" and _string_start(text, i)):
            start_line = line
            value, i = _string(text, i)
            line += value.count("\n")
            out.append(("str", value, start_line))
        elif c == "'":
            # 'x' or '\n' is a char literal; 'a without a closing quote is a lifetime.
            if text.startswith("\\", i + 1):
                j = i + 3  # past the escaped character, which may be a quote
                while j < n and text[j] != "'":
                    j += 1
                i = j + 1
            elif i + 2 < n and text[i + 2] == "'":
                i += 3
            else:
                i += 1
                while i < n and (text[i].isalnum() or text[i] == "_"):
                    i += 1
        elif c.isalpha() or c == "_":
            j = i
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            word = text[i:j]
            if word == "r" and text.startswith("#", j):  # raw identifier r#name
                k = j + 1
                while k < n and (text[k].isalnum() or text[k] == "_"):
                    k += 1
                word, j = text[j + 1 : k], k
            out.append(("id", word, line))
            i = j
        elif c.isdigit():
            while i < n and (text[i].isalnum() or text[i] == "_"):
                i += 1
        elif text.startswith("::", i):
            out.append(("p", "::", line))
            i += 2
        else:
            out.append(("p", c, line))
            i += 1
    return out


def _string_start(text, i):
    """Whether a b"", c"", r"", r#""#, br"" or cr"" literal starts at i."""
    j = i
    if text[j] in "bc":
        j += 1
        if text.startswith('"', j):
            return True
    if j < len(text) and text[j] == "r":
        j += 1
        while j < len(text) and text[j] == "#":
            j += 1
        return text.startswith('"', j)
    return False


def _string(text, i):
    """The contents of the string literal at i and the index after it."""
    raw = False
    while text[i] != '"' and text[i] != "#":
        raw |= text[i] == "r"
        i += 1
    hashes = 0
    while text[i] == "#":
        hashes, i = hashes + 1, i + 1
    i += 1  # the opening quote
    start = i
    if raw:
        end = text.find('"' + "#" * hashes, i)
        end = len(text) if end < 0 else end
        return text[start:end], end + 1 + hashes
    while i < len(text) and text[i] != '"':
        i += 2 if text[i] == "\\" else 1
    return text[start:i], i + 1


# ---------------------------------------------------------------- one file


OPEN, CLOSE = "([{", ")]}"


def _is(tok, *values):
    """Whether a token is punctuation or an identifier among `values` (never a string)."""
    return tok[0] != "str" and tok[1] in values


def _balanced_end(toks, i):
    """Index after the bracket group opening at i."""
    depth = 0
    while i < len(toks):
        kind, v, _ = toks[i]
        if kind == "p" and v in OPEN:
            depth += 1
        elif kind == "p" and v in CLOSE:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return i


def _item_end(toks, i):
    """Index after the item, statement, field or arm starting at i: its `;` or `,`, or the
    brace that closes its body; a closer of the enclosing group is left alone."""
    depth = 0
    while i < len(toks):
        kind, v, _ = toks[i]
        if kind == "p" and v in OPEN:
            depth += 1
        elif kind == "p" and v in CLOSE:
            if depth == 0:
                return i
            depth -= 1
            if depth == 0 and v == "}":
                return i + 1
        elif kind == "p" and v in ";," and depth == 0:
            return i + 1
        i += 1
    return i


def _test_only(pred):
    """Whether a cfg predicate (tokens inside `cfg( )`) holds only under test."""
    if pred == [("id", "test")]:
        return True
    if len(pred) > 2 and pred[0] == ("id", "all") and pred[1] == ("p", "("):
        args, depth, cur = [], 0, []
        for t in pred[2:-1]:
            if t[0] == "p" and t[1] in OPEN:
                depth += 1
            elif t[0] == "p" and t[1] in CLOSE:
                depth -= 1
            if t == ("p", ",") and depth == 0:
                args.append(cur)
                cur = []
            else:
                cur.append(t)
        args.append(cur)
        return any(_test_only(a) for a in args)
    return False


def _attribute(toks):
    """(test-only, #[path] value or None) of the tokens inside `#[ ]`."""
    plain = [(k, v) for k, v, _ in toks]
    if plain[:2] == [("id", "cfg"), ("p", "(")] and plain[-1] == ("p", ")"):
        return _test_only(plain[2:-1]), None
    if len(plain) == 3 and plain[:2] == [("id", "path"), ("p", "=")] and plain[2][0] == "str":
        return False, plain[2][1]
    return False, None


def _path_tree(toks, i, prefix, out):
    """Reads the path or use tree at i (after `prefix`) into `out`; returns the index after it."""
    segs = list(prefix)
    while i < len(toks):
        kind, v, _ = toks[i]
        if kind == "p" and v == "{":
            i += 1
            while i < len(toks) and not _is(toks[i], "}"):
                i = _path_tree(toks, i, segs, out)
                while i < len(toks) and not _is(toks[i], ",", "}"):  # `as name`
                    i = _balanced_end(toks, i) if _is(toks[i], *OPEN) else i + 1
                if i < len(toks) and _is(toks[i], ","):
                    i += 1
            return i + 1
        if kind == "id":
            segs.append(v)
            i += 1
            if i < len(toks) and toks[i][:2] == ("p", "::"):
                i += 1
                continue
        break
    out.append(segs)
    return i


def scan(text):
    """What one file declares and names: `mods` as (inline module names around it, name,
    #[path] or None) for each `mod name;`, `inline` as the module paths (relative to the file)
    of its `mod name { }` blocks, and `paths` as (inline module names around it, segments,
    line) for each path that starts with crate, $crate, super or self."""
    toks = tokens(text)
    mods, inline, paths = [], [], []
    scopes = []  # one entry per open brace: a module name or None
    path_attr = None
    i = 0
    while i < len(toks):
        kind, v, line = toks[i]
        here = [s for s in scopes if s is not None]
        if kind == "p" and v == "#":
            inner = i + 1 < len(toks) and _is(toks[i + 1], "!")
            start = i + (2 if inner else 1)
            if start >= len(toks) or not _is(toks[start], "["):
                i += 1
                continue
            end = _balanced_end(toks, start)
            test_only, p = _attribute(toks[start + 1 : end - 1])
            if test_only and inner:
                # The rest of the enclosing block (or the whole file) is test-only.
                depth = 0
                i = end
                while i < len(toks) and not (_is(toks[i], "}") and depth == 0):
                    depth += _is(toks[i], "{") - _is(toks[i], "}")
                    i += 1
                continue
            if test_only:
                i = end
                while i < len(toks) and _is(toks[i], "#"):  # further attributes
                    i = _balanced_end(toks, i + 1)
                i = _item_end(toks, i)
                continue
            if p is not None:
                path_attr = p
            # Paths in other attributes are code too: `#[error("..", super::MAX)]`, and
            # serde's `with = "crate::x"` names a module in a string.
            for k, s, at in toks[start + 1 : end - 1]:
                if k == "str" and PATH_STRING.fullmatch(s):
                    paths += [(here, segs, at) for _, segs, _ in scan(s)["paths"]]
            i = start + 1
            continue
        if kind == "id" and v == "mod" and i + 2 < len(toks) and toks[i + 1][0] == "id":
            name, after = toks[i + 1][1], toks[i + 2]
            if _is(after, ";"):
                mods.append((here, name, path_attr))
                path_attr = None
                i += 3
                continue
            if _is(after, "{"):
                scopes.append(name)
                inline.append(here + [name])
                path_attr = None
                i += 3
                continue
        if kind == "p" and v in "{};":
            path_attr = None
            if v == "{":
                scopes.append(None)
            elif v == "}" and scopes:
                scopes.pop()
            i += 1
            continue
        if (
            kind == "id"
            and v in ("crate", "super", "self")
            and i + 1 < len(toks)
            and toks[i + 1][:2] == ("p", "::")
            and not (i >= 1 and _is(toks[i - 1], "::"))
            and not (i >= 2 and _is(toks[i - 1], "in") and _is(toks[i - 2], "("))  # pub(in ..)
        ):
            found = []
            i = _path_tree(toks, i + 2, [v], found)
            paths += [(here, segs, line) for segs in found]
            continue
        i += 1
    return {"mods": mods, "inline": inline, "paths": paths}


# ---------------------------------------------------------------- one target


def module_tree(root_file):
    """The files of the target whose root file is root_file, as [(module path, file, scan)],
    and {module path: file} for every module, inline ones included. The crate root is ()."""
    files, modules, seen = [], {}, set()
    todo = [((), root_file, True)]  # module path, file, whether its children live beside it
    while todo:
        mpath, path, mod_rs = todo.pop()
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        with open(path, encoding="utf-8", errors="replace") as f:
            info = scan(f.read())
        files.append((mpath, path, info))
        modules[mpath] = path
        for names in info["inline"]:
            modules.setdefault(mpath + tuple(names), path)
        here = os.path.dirname(path)
        stem = os.path.splitext(os.path.basename(path))[0]
        children = here if mod_rs else os.path.join(here, stem)
        for names, name, attr in info["mods"]:
            if attr is not None:
                # rustc: relative to the file's folder, or inside inline modules to theirs;
                # a file named by #[path] keeps its own children beside it.
                base = os.path.join(children, *names) if names else here
                candidates = [(os.path.join(base, attr), True)]
            else:
                base = os.path.join(children, *names)
                candidates = [
                    (os.path.join(base, name + ".rs"), False),
                    (os.path.join(base, name, "mod.rs"), True),
                ]
            for file, child_mod_rs in candidates:
                if os.path.isfile(file):
                    todo.append((mpath + tuple(names) + (name,), file, child_mod_rs))
                    break
    return files, modules


def resolve(modules, scope, segs):
    """The module path a path names from module `scope`, or None."""
    head, rest = segs[0], segs[1:]
    if head == "crate":
        base = ()
    elif head == "super":
        base = scope[:-1]
    else:  # self
        base = scope
    while rest and rest[0] in ("super", "self"):
        base = base[:-1] if rest[0] == "super" else base
        rest = rest[1:]
    full = base + tuple(s for s in rest if s != "self")
    for n in range(len(full), -1, -1):
        if full[:n] in modules:
            return full[:n]
    return None


def target_edges(root_file):
    """{file: {file it depends on: line of the first path to it}} of one target, the root
    file left out."""
    files, modules = module_tree(root_file)
    edges = {}
    for mpath, path, info in files:
        if path == root_file:
            continue
        out = edges.setdefault(path, {})
        for names, segs, line in info["paths"]:
            target = resolve(modules, mpath + tuple(names), segs)
            file = modules.get(target) if target else None  # () is the crate root
            if file not in (None, path, root_file):
                out.setdefault(file, line)
    return edges


def targets(crate):
    """The root files of a crate's library and binaries."""
    src = os.path.join(crate, "src")
    roots = [os.path.join(src, f) for f in ("lib.rs", "main.rs")]
    bins = os.path.join(src, "bin")
    if os.path.isdir(bins):
        for f in sorted(os.listdir(bins)):
            p = os.path.join(bins, f)
            roots.append(p if f.endswith(".rs") else os.path.join(p, "main.rs"))
    return [r for r in roots if os.path.isfile(r)]


# ---------------------------------------------------------------- circles


def components(graph):
    """Strongly connected components of {node: iterable of nodes} (Tarjan, without recursion)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(graph.get(start, ())))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(graph.get(w, ()))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                out.append(comp)
    return out


def crates(root):
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        if "Cargo.toml" in files and os.path.isdir(os.path.join(dirpath, "src")):
            yield dirpath


def circles(root):
    """[(crate, sorted files, {file: {file: line}} inside the circle)] under root."""
    found = []
    for crate in crates(root):
        seen = set()
        for root_file in targets(crate):
            edges = target_edges(root_file)
            for comp in components(edges):
                key = frozenset(comp)
                if len(comp) < 2 or key in seen:
                    continue
                seen.add(key)
                inside = {f: {t: l for t, l in edges[f].items() if t in key} for f in comp}
                found.append((crate, sorted(comp), inside))
    return found


def main(argv):
    if argv[1:2] in (["-h"], ["--help"]):
        print(__doc__.strip())
        return 0
    if len(argv) > 2 or argv[1:2] and argv[1].startswith("-"):
        print("usage: check-cycles.py [ROOT]", file=sys.stderr)
        return 2
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.normpath(argv[1] if len(argv) > 1 else os.path.join(here, ".."))
    if not any(True for _ in crates(root)):
        print(f"check-cycles: no crate (a folder with Cargo.toml and src/) under {root}", file=sys.stderr)
        return 2
    found = circles(root)
    for crate, files, inside in found:
        rel = lambda p: os.path.relpath(p, root)
        print(f"{rel(crate)}: circle of {len(files)}: " + ", ".join(rel(f) for f in files))
        src = os.path.join(crate, "src")
        for f in files:
            for t, line in sorted(inside[f].items()):
                print(f"    {os.path.relpath(f, src)}:{line} -> {os.path.relpath(t, src)}")
    if found:
        print(f"{len(found)} import circle(s)")
        return 1
    print("no import circles")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
