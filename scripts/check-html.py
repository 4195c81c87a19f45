#!/usr/bin/env python3
"""Checks the HTML report as headless Chromium rendered it (scripts/check-html.sh).

    check-html.py PAGE DOM CONSOLE [REPORT]

PAGE is the file synth-replay wrote, DOM Chromium's --dump-dom of it, CONSOLE
Chromium's stderr (--enable-logging=stderr), REPORT the JSON report it was
rendered from, if any. Every problem is printed; exit 1 if there is any.

- The page loads nothing: no element refers to another file or host, and it
  carries its Content-Security-Policy.
- The page's script ran to its end (it sets data-js="ok" on <body> last) and
  the console logged nothing (an uncaught error, a CSP violation, a failed load).
- The verdict and every table of the summary are there, each with rows.
- The timeline: a report with one has every plot, each with lines of several
  points (and each line's data-points matches its points); the page of a report
  without one says so.
"""
import json
import re
import sys
from html.parser import HTMLParser

PLOTS = ["clients", "mbps", "latency", "lost", "freezes", "lateness", "cpu", "rss"]
TABLES = ["thresholds", "clients", "media", "signals", "generator", "meetings"]
MIN_POINTS = 3


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []  # (tag, attrs dict)
        self.rows = {}  # table id -> body rows
        self.table = None
        self.in_body = False
        self.plot = None
        self.points = {}  # plot id -> [(series, data-points, points in attribute)]

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "table":
            self.table = a.get("id")
            self.rows.setdefault(self.table, 0)
        elif tag == "tbody":
            self.in_body = True
        elif tag == "tr" and self.in_body and self.table:
            self.rows[self.table] += 1
        elif tag == "svg" and "plot" in (a.get("class") or "").split():
            self.plot = (a.get("id") or "").removeprefix("plot-")
            self.points.setdefault(self.plot, [])
        elif tag == "polyline" and self.plot is not None:
            pts = (a.get("points") or "").split()
            self.points[self.plot].append((a.get("data-series"), int(a.get("data-points") or -1), len(pts)))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag == "table":
            self.table = None
            self.in_body = False
        elif tag == "svg":
            self.plot = None


def parse(path):
    p = Page()
    with open(path, encoding="utf-8") as f:
        p.feed(f.read())
    return p


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    page_path, dom_path, console_path = sys.argv[1:4]
    report = None
    if len(sys.argv) == 5:
        with open(sys.argv[4], encoding="utf-8") as f:
            report = json.load(f)
    problems = []

    # Nothing from anywhere: the file as written.
    page = parse(page_path)
    for tag, a in page.tags:
        for attr in ("src", "href", "xlink:href", "action", "srcset", "poster", "data"):
            v = a.get(attr)
            if v is not None and not v.startswith("#"):
                problems.append(f"<{tag} {attr}={v!r}> refers outside the page")
        if tag in ("link", "img", "iframe", "object", "embed", "base"):
            problems.append(f"<{tag}> in the page")
        style = a.get("style") or ""
        if "url(" in style:
            problems.append(f"<{tag}> style loads {style!r}")
    with open(page_path, encoding="utf-8") as f:
        text = f.read()
    for m in re.finditer(r"<style>(.*?)</style>", text, re.S):
        if "url(" in m.group(1) or "@import" in m.group(1):
            problems.append("the stylesheet loads something")
    csp = [a for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    if not csp or "default-src 'none'" not in csp[0].get("content", ""):
        problems.append("no Content-Security-Policy with default-src 'none'")

    # What the browser made of it.
    dom = parse(dom_path)
    body = [a for t, a in dom.tags if t == "body"]
    if not body or body[0].get("data-js") != "ok":
        problems.append("the page's script did not run to its end (no data-js=\"ok\" on <body>)")
    with open(console_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if ":CONSOLE" in line:
                problems.append(f"console: {line.strip()}")
    verdict = [a for t, a in dom.tags if a.get("id") == "verdict"]
    if not verdict:
        problems.append("no verdict")
    elif report is not None and "passed" in report:
        want = "pass" if report["passed"] else "fail"
        if want not in verdict[0].get("class", "").split():
            problems.append(f"verdict is {verdict[0].get('class')!r}, the report says passed={report['passed']}")
    for t in TABLES:
        if dom.rows.get(f"table-{t}", 0) < 1:
            problems.append(f"table-{t}: missing or empty")

    # The timeline.
    with open(dom_path, encoding="utf-8") as f:
        says_none = "A timeline is not in this report" in f.read()
    if report is not None:
        has_timeline = bool((report.get("timeline") or {}).get("samples"))
        # Every run writes a timeline since report version 3: a real run's must have one.
        if report.get("version", 0) >= 3 and not has_timeline:
            problems.append("a version 3 report without timeline samples")
    else:
        has_timeline = not says_none
    if has_timeline:
        if says_none:
            problems.append("the report has a timeline but the page says it has none")
        for p in PLOTS:
            lines = dom.points.get(p)
            if lines is None:
                problems.append(f"plot-{p}: missing")
                continue
            for series, declared, actual in lines:
                if declared != actual:
                    problems.append(f"plot-{p} {series}: data-points {declared} but {actual} points")
            total = sum(actual for _, _, actual in lines)
            if total < MIN_POINTS:
                problems.append(f"plot-{p}: {total} points (want at least {MIN_POINTS})")
        print(f"check-html: {len(PLOTS)} plots, " + ", ".join(
            f"{p} {sum(a for _, _, a in dom.points.get(p, []))}" for p in PLOTS) + " points")
    elif not says_none:
        problems.append("no timeline, and the page does not say so")
    else:
        print("check-html: the report has no timeline (the page says so); plots not checked")

    print("check-html: tables " + ", ".join(f"{t} {dom.rows.get('table-' + t, 0)} rows" for t in TABLES))
    for p in problems:
        print(f"check-html: FAIL {p}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print("check-html: ok")


if __name__ == "__main__":
    main()
