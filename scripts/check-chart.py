#!/usr/bin/env python3
"""Offline check of the Helm chart: lint, schema, render, Kubernetes validation, id uniqueness.

Valid cases (values.yaml with a serverUrl, values-production.yaml, values-development.yaml, and
helm/tests/*.yaml, each deep-merged over values.yaml) must pass the schema, render, and pass
`kubernetes-validate --strict`; CRD kinds it has no schema for (ServiceMonitor) are skipped by
name. Each helm/tests/invalid/*.yaml must be rejected with an error naming its `# expect:`
line. With --replay-bin and --pack, the rendered config is expanded by `synth-replay validate
--json` for several pods, and every participant id across pods must be distinct; and two short
real runs are merged by scripts/merge-pod-reports.sh, from a folder and from a stand-in kubectl.
Run through scripts/check-chart.sh, which installs the pinned Python packages.
"""
import argparse, copy, json, os, random, re, string, subprocess, sys, tempfile
from pathlib import Path

import helm_python as helm
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm/videocall-synthetic-clients"
TESTS = ROOT / "helm/tests"
SERVER = "https://videocall-server.videocall.svc.cluster.local:443"  # stands in for --set serverUrl
SKIP_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}  # CRDs unknown to kubernetes-validate
PODS = 4


def merge(base, over):
    for k, v in over.items():
        base[k] = merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return base


def values_for(*files, extra=None):
    vals = yaml.safe_load((CHART / "values.yaml").read_text())
    for f in files:
        merge(vals, yaml.safe_load(Path(f).read_text()) or {})
    return merge(vals, extra or {})


def render(vals):
    with helm.Chart.load(str(CHART)) as chart:
        try:
            chart.validate_schema(vals)
        except helm.HelmError as e:
            raise helm.HelmValuesError(f"schema: {e}") from e
        files = chart.render(vals, name="synth", namespace="load")
    return [d for name, text in sorted(files.items()) if not name.endswith("NOTES.txt")
            for d in yaml.safe_load_all(text) if d]


def kube_validate(docs, kube):
    checked = [d for d in docs if (d["apiVersion"], d["kind"]) not in SKIP_KINDS]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump_all(checked, f)
    bin_ = Path(sys.executable).with_name("kubernetes-validate")
    p = subprocess.run([str(bin_), "--strict", "--quiet", "-k", kube, f.name], capture_output=True, text=True)
    os.unlink(f.name)
    out = (p.stdout + p.stderr).strip()
    # An unknown kind or apiVersion is only a WARN there: count it as a failure here.
    if p.returncode or "WARN" in out or "ERROR" in out:
        raise RuntimeError("kubernetes-validate:\n" + out)
    return len(checked), len(docs) - len(checked)


def structure(docs, vals):
    """Cross-object wiring the per-object schemas can't see."""
    by_kind = {d["kind"]: d for d in docs}
    work = by_kind["Job" if vals["mode"] == "job" else "Deployment"]
    pod = work["spec"]["template"]
    svc = by_kind["Service"]
    assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items(), "Service selects no pod"
    if "ServiceMonitor" in by_kind:
        assert by_kind["ServiceMonitor"]["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    c = pod["spec"]["containers"][0]
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] and sc["runAsNonRoot"] and sc["capabilities"]["drop"] == ["ALL"]
    assert any(m["mountPath"] == "/tmp" for m in c["volumeMounts"]), "no writable /tmp"
    cfg = yaml.safe_load(by_kind["ConfigMap"]["data"]["config.yaml"])
    assert cfg["groups"][0]["count"] == vals["clientsPerPod"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["METRICS_HOLD"] == vals["metrics"]["hold"], "METRICS_HOLD is not metrics.hold"
    if vals["mode"] == "job" and not vals["job"].get("activeDeadlineSeconds"):
        # The Job's deadline leaves room for the run, its ramp-up, the hold and the margin.
        ramp = -(-vals["clientsPerPod"] * vals["rampUpDelayMs"] // 1000)
        want = (seconds(vals["duration"]) + seconds(vals["metrics"]["hold"]) + ramp
                + vals["job"]["deadlineMarginSeconds"])
        got = work["spec"]["activeDeadlineSeconds"]
        assert got == want, f"activeDeadlineSeconds {got}, want {want}"
    return work, c, cfg


def seconds(d):
    """Whole seconds, rounded up, of a duration like "1m30s" (as the chart reads them)."""
    unit = {"h": 3600, "m": 60, "s": 1}
    total = 0
    for n, u in re.findall(r"([0-9]+)(ms|s|m|h)", d):
        total += -(-int(n) // 1000) if u == "ms" else int(n) * unit[u]
    return total


def replay_validate(args, vals, work, container, cfg):
    """Expand the config for several pods as the pod's env would, and check the ids."""
    env_base = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    tmp = Path(tempfile.mkdtemp())
    if cfg.get("auth", {}).get("jwt_secret_env"):
        env_base["JWT_SECRET"] = "chart-check-secret"
    if vals["auth"]["tokenKey"]:  # what the init container appends
        cfg["auth"] = {"token": "e30.e30.chart-check"}
    if cfg.get("tls", {}).get("ca_cert"):  # the Secret mount does not exist here
        ca = tmp / "ca.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-subj", "/CN=chart-check", "-keyout", str(tmp / "k.pem"),
                        "-out", str(ca)], check=True, capture_output=True)
        cfg["tls"]["ca_cert"] = str(ca)
    (tmp / "config.yaml").write_text(yaml.safe_dump(cfg))
    ids, meetings, pods = [], {}, min(PODS, vals["replicaCount"])
    for i in range(pods):
        rnd = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        env = {**os.environ, **env_base, "CONFIG": str(tmp / "config.yaml"), "PACK": args.pack}
        if vals["mode"] == "job":
            env.update(POD_NAME=f"{work['metadata']['name']}-{i}-{rnd}", POD_INDEX=str(i))
        else:
            env.update(POD_NAME=f"{work['metadata']['name']}-7d9f8c6b5{i}-{rnd}")
            env.pop("POD_INDEX", None), env.pop("JOB_COMPLETION_INDEX", None)
        p = subprocess.run([args.replay_bin, "validate", "--config", str(tmp / "config.yaml"),
                            "--pack", args.pack, "--json"], env=env, capture_output=True, text=True)
        if p.returncode:
            raise RuntimeError(f"synth-replay validate (pod {i}) exit {p.returncode}: {p.stderr.strip()}")
        plan = json.loads(p.stdout)
        ids += [c["user_id"] for c in plan["clients"]]
        for m, n in plan["meetings"].items():
            meetings[m] = meetings.get(m, 0) + n
    dup = len(ids) - len(set(ids))
    assert len(ids) == pods * vals["clientsPerPod"], f"{len(ids)} clients for {pods} pods"
    assert not dup, f"{dup} duplicate user ids across {pods} pods"
    if not vals["meeting"]["id"]:
        big = {m: n for m, n in meetings.items() if n > vals["meeting"]["size"]}
        assert not big, f"meetings over size {vals['meeting']['size']}: {big}"
    return f"{len(ids)} distinct ids over {pods} pods, {len(meetings)} meetings"


FAKE_KUBECTL = """#!/bin/sh
# Stands in for kubectl: the pods of the job, then each pod's log (a file named after it).
case "$*" in
  *"get pods"*) printf '1 2025-01-01T00:00:09Z synth-1-b\\n0 2025-01-01T00:00:00Z synth-0-a\\n1 2025-01-01T00:00:01Z synth-1-old\\n' ;;
  *logs*) for a in "$@"; do case "$a" in synth-[0-9]*) cat "$FAKE_LOGS/$a.log" ;; esac; done ;;
  *) exit 1 ;;
esac
"""


def merge_pod_reports(args, docs):
    """Two real runs as two pods: scripts/merge-pod-reports.sh merges their reports, from a folder
    and from `kubectl logs` (a stand-in kubectl serving the runs' stdout), into the sums."""
    container = next(d for d in docs if d["kind"] == "Job")["spec"]["template"]["spec"]["containers"][0]
    assert "--print-report" in container["args"], "job mode does not print the report"
    tmp = Path(tempfile.mkdtemp())
    (tmp / "reports").mkdir()
    (tmp / "logs").mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("SERVER_URL", "CONFIG", "PACK", "RUST_LOG")}
    for i, pod in enumerate(["synth-0-a", "synth-1-b"]):
        p = subprocess.run([args.replay_bin, "run", "--pack", args.pack, "--duration", "2s", "--quiet",
                            "--report", str(tmp / "reports" / f"pod-{i}.json"), "--print-report"],
                           env=env, capture_output=True, text=True)
        assert p.returncode == 0, f"run {i} exit {p.returncode}: {p.stderr.strip()}"
        (tmp / "logs" / f"{pod}.log").write_text(p.stdout)
    (tmp / "logs" / "synth-1-old.log").write_text("an earlier try of pod 1, without a report\n")
    parts = [json.loads((tmp / "reports" / f"pod-{i}.json").read_text()) for i in range(2)]
    fake = tmp / "bin"
    fake.mkdir()
    (fake / "kubectl").write_text(FAKE_KUBECTL)
    (fake / "kubectl").chmod(0o755)
    script = str(ROOT / "scripts/merge-pod-reports.sh")
    env = {**env, "SYNTH_REPLAY": args.replay_bin, "FAKE_LOGS": str(tmp / "logs"),
           "PATH": f"{fake}:{os.environ['PATH']}"}
    for how, cmd in [("folder", [script, str(tmp / "reports"), "-o", str(tmp / "merged.json")]),
                     ("kubectl", [script, "--namespace", "load", "--job", "synth", "-o", str(tmp / "merged.json"),
                                  "--keep", str(tmp / "collected")])]:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True)
        assert p.returncode == 0, f"merge-pod-reports ({how}) exit {p.returncode}: {p.stderr.strip()}"
        m = json.loads((tmp / "merged.json").read_text())
        for key in [("clients", "planned"), ("audio", "sent"), ("video", "received")]:
            got, want = m[key[0]][key[1]], [r[key[0]][key[1]] for r in parts]
            if isinstance(got, dict):
                got, want = got.get("packets"), sum(w["packets"] for w in want)
            else:
                want = sum(want)
            assert got == want, f"{how}: merged {key} {got} != {want}"
        assert len(m["merged_from"]) == 2, f"{how}: merged from {m['merged_from']}"
    return "merge-pod-reports: 2 pods' reports merged from a folder and from kubectl logs"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replay-bin", help="synth-replay binary for the `validate` step")
    ap.add_argument("--pack", help="pack for `synth-replay validate` (with --replay-bin)")
    ap.add_argument("--kube-version", default="1.33.0")
    args = ap.parse_args()
    if args.replay_bin and not args.pack:
        ap.error("--replay-bin needs --pack")
    failures = 0
    valid = [("values.yaml (+serverUrl)", [], {"serverUrl": SERVER}),
             ("values-production.yaml", [CHART / "values-production.yaml"], None),
             ("values-development.yaml", [CHART / "values-development.yaml"], None)]
    valid += [(f"tests/{f.name}", [f], None) for f in sorted(TESTS.glob("*.yaml"))]
    for name, files, extra in valid:
        try:
            vals = values_for(*files, extra=extra)
            lint = helm.lint(str(CHART), vals, kube_version="v" + args.kube_version)
            bad = [m for m in lint["messages"] if m["severity"] >= 2] + lint["errors"]
            assert not bad, f"helm lint: {bad}"
            docs = render(vals)
            n, skipped = kube_validate(docs, args.kube_version)
            work, container, cfg = structure(docs, vals)
            note = replay_validate(args, vals, work, container, cfg) if args.replay_bin else "synth-replay validate skipped (no --replay-bin)"
            print(f"ok   {name}: lint ok, {work['kind']}, {n} objects valid for {args.kube_version}, {skipped} CRD skipped; {note}")
        except Exception as e:  # noqa: BLE001 - every failure is reported, then counted
            failures += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}")
    for f in sorted((TESTS / "invalid").glob("*.yaml")):
        expect = f.read_text().splitlines()[0].removeprefix("# expect:").strip()
        try:
            render(values_for(f))
            failures += 1
            print(f"FAIL invalid/{f.name}: accepted, should be rejected ({expect})")
        except (helm.HelmError, AssertionError) as e:
            msg = " ".join(str(e).replace("videocall-synthetic-clients:", "").split())
            ok = expect.lower() in msg.lower()
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} invalid/{f.name}: rejected{'' if ok else f' but not for {expect!r}'}: {msg[:140]}")
    if args.replay_bin:
        try:
            print(f"ok   {merge_pod_reports(args, render(values_for(extra={'serverUrl': SERVER})))}")
        except Exception as e:  # noqa: BLE001 - reported, then counted
            failures += 1
            print(f"FAIL merge-pod-reports: {type(e).__name__}: {e}")
        valid.append(("merge-pod-reports", [], None))
    cases = len(valid) + len(list((TESTS / "invalid").glob("*.yaml")))
    print(f"chart: {cases - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
