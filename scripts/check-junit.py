"""Checks JUnit XML files written by synth-replay against the report they came from.

    check-junit.py SCHEMA.xsd REPORT.json FILE.xml...

Each file must be valid against SCHEMA (xmlschema), and junitparser, a real consumer, must read
from it: one test case per threshold verdict (named "NAME EXPR", classname
synth-replay.thresholds; a failing one's message "actual V, wanted EXPR" or "no value, wanted
EXPR"), a failing "aborted" case when the run was aborted, and one case per capacity-search step
(classname synth-replay.search, named "N clients"); the counts must match. Run by
scripts/check-junit.sh, with the packages it installs.
"""

import json
import sys

import junitparser
import xmlschema


def shown(v):
    """A value as synth-replay writes it in a message: rounded to 3 decimals, no ".0"."""
    s = repr(round(v, 3))
    return s[:-2] if s.endswith(".0") else s


def expected(report):
    """(classname, name, failing, message start or None) of every case the report makes."""
    cases = []
    for v in report["thresholds"]:
        msg = None
        if not v["pass"]:
            actual = "no value" if v["actual"] is None else f"actual {shown(v['actual'])}"
            msg = f"{actual}, wanted {v['expr']}"
        cases.append(("synth-replay.thresholds", f"{v['name']} {v['expr']}", not v["pass"], msg))
    if report.get("aborted"):
        cases.append(("synth-replay.thresholds", "aborted", True, "the run was ended early by"))
    for st in (report.get("search") or {}).get("steps", []):
        msg = "; ".join(st["broken"]) if st["broken"] else None
        cases.append(("synth-replay.search", f"{st['clients']} clients", not st["passed"], msg))
    return cases


def check(schema, report, path):
    problems = [f"{path}: {e.reason} at {e.path}" for e in schema.iter_errors(path)]
    if problems:
        return problems
    xml = junitparser.JUnitXml.fromfile(path)
    got = []
    for suite in xml:
        for case in suite:
            failures = [r for r in case.result if isinstance(r, junitparser.Failure)]
            msg = failures[0].message if failures else None
            got.append((case.classname, case.name, bool(failures), msg))
        if suite.tests != len(list(suite)):
            problems.append(f"{path}: suite {suite.name} says tests={suite.tests}, has {len(list(suite))}")
    want = expected(report)
    if [g[:3] for g in got] != [w[:3] for w in want]:
        problems.append(f"{path}: cases\n  got  {[g[:3] for g in got]}\n  want {[w[:3] for w in want]}")
    for g, w in zip(got, want):
        if w[3] and not (g[3] or "").startswith(w[3]):
            problems.append(f"{path}: {g[1]!r}: message {g[3]!r}, wanted it to start with {w[3]!r}")
    failing = sum(1 for w in want if w[2])
    if (xml.tests, xml.failures) != (len(want), failing):
        problems.append(
            f"{path}: <testsuites> says tests={xml.tests} failures={xml.failures}, "
            f"the report makes {len(want)} and {failing}"
        )
    if not problems:
        print(f"check-junit: {path}: valid, {len(want)} cases, {failing} failing, as the report says")
    return problems


def main():
    xsd, report_path, *files = sys.argv[1:]
    schema = xmlschema.XMLSchema(xsd)
    with open(report_path) as f:
        report = json.load(f)
    problems = []
    for path in files:
        problems += check(schema, report, path)
    if not any(w[2] for w in expected(report)) or all(w[2] for w in expected(report)):
        problems.append("the run should have both passing and failing cases (see check-junit.sh)")
    for p in problems:
        print(f"check-junit: FAIL {p}", file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
