#!/usr/bin/env bash
# The Prometheus endpoint as Prometheus' own linter sees it: a short real run against the
# embedded relay serves /metrics on a free loopback port; it is scraped as soon as it answers
# and again mid-run (clients connected, media flowing), and each scrape must pass
# `promtool check metrics` clean (exposition format, counters ending in _total, base units,
# HELP and TYPE). The metric families served must also be exactly those of the metrics table
# in docs/src/metrics.md.
#
#   scripts/check-metrics.sh [--replay-bin BIN] [--pack PACK]
#
# Installs Debian's prometheus package (for promtool) if missing. Scrapes stay in
# target/check-metrics/.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/real-run.sh
. scripts/real-run.sh
real_run_args "[--replay-bin BIN] [--pack PACK]" "$@"
need_command promtool prometheus
OUT=$(fresh_dir target/check-metrics)
PORT=$(free_port)

RUN_PID=
trap '[ -n "$RUN_PID" ] && kill "$RUN_PID" 2>/dev/null; wait 2>/dev/null || true' EXIT
"$BIN" run --quiet --pack "$PACK" --duration 15s --metrics-listen "127.0.0.1:$PORT" \
  >"$OUT/run.log" 2>&1 &
RUN_PID=$!

# Polls /metrics until `ready` (an awk program over the scrape) holds, for at most 30 s.
scrape_when() {
  local file=$1 ready=$2
  for _ in $(seq 150); do
    if curl -sf --max-time 2 "http://127.0.0.1:$PORT/metrics" >"$file" && awk "$ready" "$file"; then
      return 0
    fi
    kill -0 "$RUN_PID" 2>/dev/null || { cat "$OUT/run.log" >&2; echo "check-metrics: the run ended early" >&2; exit 1; }
    sleep 0.2
  done
  echo "check-metrics: /metrics never showed what was waited for ($file)" >&2
  exit 1
}
scrape_when "$OUT/early.txt" 'END { exit !(NR > 0) }'
# shellcheck disable=SC2016 # $2 is awk's second field, not the shell's
scrape_when "$OUT/mid.txt" '
  /^synth_clients\{state="connected"\} / { c = $2 }
  /^synth_clients_planned / { p = $2 }
  /^synth_packets_received_total\{media="video"\} / { v = $2 }
  END { exit !(p > 0 && c == p && v > 0) }'

fail=0
for s in early mid; do
  if promtool check metrics <"$OUT/$s.txt" >"$OUT/$s.promtool" 2>&1; then
    echo "check-metrics: promtool: $s scrape clean ($(grep -c '^# TYPE' "$OUT/$s.txt") families)"
  else
    echo "check-metrics: FAIL promtool on the $s scrape:" >&2
    sed 's/^/  /' "$OUT/$s.promtool" >&2
    fail=1
  fi
done

# The metrics chapter's table lists exactly the families served.
python3 - "$OUT/mid.txt" docs/src/metrics.md <<'PY' || fail=1
import re, sys
served = set(re.findall(r"^# TYPE (\S+) ", open(sys.argv[1]).read(), re.M))
chapter = open(sys.argv[2]).read()
table = chapter.split("# Metrics\n", 1)[1].split("\n#", 1)[0]
listed = set()
for line in table.splitlines():
    if line.startswith("| `synth_"):
        listed |= set(re.findall(r"`(synth_[a-z0-9_]+)`", line.split("|")[1]))
problems = [f"served but not in the metrics table of docs/src/metrics.md: {n}" for n in sorted(served - listed)]
problems += [f"in the metrics table of docs/src/metrics.md but not served: {n}" for n in sorted(listed - served)]
for p in problems:
    print(f"check-metrics: FAIL {p}", file=sys.stderr)
if problems:
    sys.exit(1)
print(f"check-metrics: docs/src/metrics.md lists the {len(served)} families served")
PY

kill "$RUN_PID" 2>/dev/null || true
wait "$RUN_PID" 2>/dev/null || true
RUN_PID=
[ "$fail" = 0 ] || exit 1
echo "check-metrics: ok"
