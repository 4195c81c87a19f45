#!/usr/bin/env python3
"""Runs every query of docs/grafana-dashboard.json through a real Prometheus
(scripts/check-dashboard.sh starts it, scraping a real run).

    check-dashboard.py DASHBOARD PROMETHEUS_URL START_UNIX END_UNIX

Grafana's variables are substituted as Grafana would: $__rate_interval with
RATE_INTERVAL (10s), $__interval with 1s, and the template variables
($namespace, $pod, all selected) with their allValue `.*`. Each variable's
own query (label_values(METRIC, LABEL)) must find values. Timeseries panels are
range queries over START..END (as Grafana draws them), stat panels instant
queries at END. A target that returns no series, or only NaN, is no data: every
such panel is named, and the exit status is 1.
"""
import json
import math
import re
import sys
import urllib.parse
import urllib.request

RATE_INTERVAL = "10s"


def substitute(expr, variables):
    expr = expr.replace("$__rate_interval", RATE_INTERVAL).replace("$__interval", "1s")
    for name, value in variables.items():
        expr = re.sub(r"\$\{%s(:[a-z]+)?\}|\$%s\b" % (name, name), value, expr)
    left = re.findall(r"\$\{?\w+", expr)
    if left:
        raise ValueError(f"unknown variables {left} in {expr}")
    return expr


def get(base, path, params):
    url = f"{base}{path}?{urllib.parse.urlencode(params, doseq=True)}"
    with urllib.request.urlopen(url, timeout=30) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(f"{path}: {body}")
    return body["data"]


def has_data(data):
    """Whether a query's result has a number that is not NaN."""
    for series in data.get("result", []):
        values = series.get("values") or [series.get("value")]
        for _, v in filter(None, values):
            if not math.isnan(float(v)):
                return True
    return False


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    path, base, start, end = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    with open(path) as f:
        dash = json.load(f)
    problems = []

    variables = {}
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        variables[v["name"]] = v.get("allValue") or ".*"
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v.get("definition") or v.get("query", {}).get("query", "")
        m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", q.strip())
        if not m:
            problems.append(f"variable {v['name']}: query {q!r} is not label_values(METRIC, LABEL)")
            continue
        selector, label = substitute(m.group(1), variables), m.group(2)
        values = get(base, f"/api/v1/label/{label}/values", {"match[]": selector, "start": start, "end": end})
        if not values:
            problems.append(f"variable {v['name']}: label_values({selector}, {label}) found nothing")
        else:
            print(f"check-dashboard: variable {v['name']}: {values}")

    panels = []
    for p in dash.get("panels", []):
        panels.append(p)
        panels.extend(p.get("panels", []))  # collapsed rows hold theirs
    checked = 0
    for p in panels:
        targets = [t for t in p.get("targets", []) if t.get("expr")]
        if not targets:
            continue
        title = f"panel {p.get('id')} \"{p.get('title')}\""
        for t in targets:
            expr = substitute(t["expr"], variables)
            try:
                if p.get("type") == "timeseries":
                    data = get(base, "/api/v1/query_range", {"query": expr, "start": start, "end": end, "step": "1"})
                else:
                    data = get(base, "/api/v1/query", {"query": expr, "time": end})
            except Exception as e:  # a query Prometheus refuses is a broken panel too
                problems.append(f"{title} target {t.get('refId')}: {expr}: {e}")
                continue
            checked += 1
            if not has_data(data):
                problems.append(f"{title} target {t.get('refId')} ({t.get('legendFormat', '')}): no data: {expr}")
    for p in problems:
        print(f"check-dashboard: FAIL {p}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"check-dashboard: ok: {checked} queries of {len(panels)} panels all have data")


if __name__ == "__main__":
    main()
