#!/usr/bin/env python3
"""Checks the links of the README, the root pages and the book's source.

    python3 scripts/check-book.py [--root DIR]

Every relative link must name a file or folder that exists, and every `#anchor` into a markdown
file must name one of its headings (GitHub's and mdBook's rule: lowercase, spaces to `-`,
punctuation dropped, a repeated heading gets `-1`, `-2`, ...) or an HTML `id`/`name`. Text that
a chapter pulls in with mdBook's `{{#include FILE[:ANCHOR]}}` is checked as part of that chapter
too, since the book shows it there. Every markdown file of the book's source must be a chapter
of SUMMARY.md, or be included by one, and every chapter SUMMARY.md lists must exist. Prints each
problem as `FILE:LINE: what` and exits 1 if there is any. Standard library only.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path
from urllib.parse import unquote

FENCE = re.compile(r"^\s{0,3}(```|~~~)")
ATX = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
CUSTOM_ID = re.compile(r"\s*\{#([^}\s]+)[^}]*\}\s*$")
HTML_ID = re.compile(r"""<[a-zA-Z][^>]*\s(?:id|name)\s*=\s*["']([^"']+)["']""")
INCLUDE = re.compile(r"\{\{#include\s+([^}\s]+)\s*\}\}")
# [text](target) and ![alt](target), with an optional "title"; the text may hold code spans.
INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFDEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")


def slug(heading: str) -> str:
    """A heading's anchor as GitHub and mdBook make it."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.strip().lower()
    out = []
    for ch in text:
        if ch.isalnum() or ch in "-_":
            out.append(ch)
        elif ch.isspace():
            out.append("-")
    return "".join(out)


def prose_lines(text: str):
    """(line number, line) outside fenced code blocks."""
    fence = None
    for no, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line)
        if m:
            if fence is None:
                fence = m.group(1)
            elif m.group(1) == fence:
                fence = None
            continue
        if fence is None:
            yield no, line


def anchors(text: str) -> set[str]:
    """Every anchor a page offers: its headings' slugs and its HTML ids."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in prose_lines(text):
        for m in HTML_ID.finditer(line):
            found.add(m.group(1))
        m = ATX.match(line)
        if not m:
            continue
        title = m.group(2)
        custom = CUSTOM_ID.search(title)
        if custom:
            found.add(custom.group(1))
            continue
        s = slug(CODE_SPAN.sub(lambda c: c.group(2), title))
        n = seen.get(s, 0)
        seen[s] = n + 1
        found.add(s if n == 0 else f"{s}-{n}")
    return found


def links(text: str):
    """(line number, target) of every link and image, outside code."""
    for no, line in prose_lines(text):
        bare = CODE_SPAN.sub(lambda c: "`" + "x" * len(c.group(2)) + "`", line)
        for m in INLINE.finditer(bare):
            yield no, line[m.start(1) : m.end(1)]
        m = REFDEF.match(bare)
        if m:
            yield no, line[m.start(1) : m.end(1)]


def included(path: Path, spec: str) -> tuple[Path, str]:
    """What `{{#include spec}}` in `path` brings in: the file and the text."""
    name, _, anchor = spec.partition(":")
    target = (path.parent / name).resolve()
    if not target.is_file():
        return target, ""
    text = target.read_text(encoding="utf-8")
    if anchor and not anchor.isdigit():
        lines, keep = [], False
        for line in text.splitlines():
            if re.search(rf"ANCHOR_END:\s*{re.escape(anchor)}\b", line):
                keep = False
            elif re.search(rf"ANCHOR:\s*{re.escape(anchor)}\b", line):
                keep = True
            elif keep and "ANCHOR" not in line:
                lines.append(line)
        text = "\n".join(lines)
    return target, text


def expand(path: Path, text: str) -> str:
    """The text with every include replaced by what it brings in (one level)."""
    return INCLUDE.sub(lambda m: included(path, m.group(1))[1], text)


def check_links(path: Path, text: str, problems: list[str], rel, cache, at=None) -> None:
    """Checks each link of `text` as written in `path`; `at` names the include it came from."""
    for no, target in links(text):
        if not target or re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith("//"):
            continue  # an external URL, mailto:, or an empty draft link (SUMMARY checks those)
        file_part, _, anchor = target.partition("#")
        dest = path if not file_part else (path.parent / unquote(file_part)).resolve()
        where = f"{rel(path)}:{no}" if at is None else at
        if not dest.exists():
            problems.append(f"{where}: no such file: {target}")
            continue
        if anchor and dest.is_file() and dest.suffix == ".md":
            if dest not in cache:
                body = dest.read_text(encoding="utf-8")
                cache[dest] = anchors(expand(dest, body))
            if anchor not in cache[dest]:
                problems.append(f"{where}: no heading #{anchor} in {rel(dest)}: {target}")


def book_src(root: Path) -> Path:
    config = tomllib.loads((root / "docs" / "book.toml").read_text(encoding="utf-8"))
    return (root / "docs" / config.get("book", {}).get("src", "src")).resolve()


def check(root: Path) -> list[str]:
    root = root.resolve()
    problems: list[str] = []

    def rel(p: Path) -> str:
        try:
            return str(p.relative_to(root))
        except ValueError:
            return str(p)

    src = book_src(root)
    pages = sorted(root.glob("*.md")) + sorted(src.rglob("*.md"))
    cache: dict[Path, set[str]] = {}
    for page in pages:
        text = page.read_text(encoding="utf-8")
        check_links(page, text, problems, rel, cache)
        if not page.is_relative_to(src):
            continue
        # What an include brings in must also resolve from the chapter that shows it.
        for no, line in prose_lines(text):
            for m in INCLUDE.finditer(line):
                target, body = included(page, m.group(1))
                at = f"{rel(page)}:{no} (the include of {m.group(1)})"
                if not target.is_file():
                    problems.append(f"{at}: no such file")
                    continue
                check_links(page, body, problems, rel, cache, at)

    summary = src / "SUMMARY.md"
    if not summary.is_file():
        return problems + [f"{rel(summary)}: missing"]
    listed: set[Path] = set()
    for no, target in links(summary.read_text(encoding="utf-8")):
        if not target:
            problems.append(f"{rel(summary)}:{no}: a chapter without a file")
            continue
        listed.add((src / target.partition("#")[0]).resolve())
    pulled_in = set()
    for chapter in listed:
        if chapter.is_file():
            for m in INCLUDE.finditer(chapter.read_text(encoding="utf-8")):
                pulled_in.add(included(chapter, m.group(1))[0])
    for page in sorted(src.rglob("*.md")):
        if page != summary and page not in listed and page not in pulled_in:
            problems.append(f"{rel(page)}: not a chapter of {rel(summary)} nor included by one")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args()
    problems = check(args.root)
    for p in problems:
        print(f"check-book: {p}", file=sys.stderr)
    if problems:
        print(f"check-book: {len(problems)} broken", file=sys.stderr)
        return 1
    print("check-book: every link and anchor resolves; every chapter is in SUMMARY.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
