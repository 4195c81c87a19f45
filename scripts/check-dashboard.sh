#!/usr/bin/env bash
# docs/grafana-dashboard.json (or --dashboard FILE) against a real Prometheus: a real run against the embedded
# relay (8 clients joining one a second, so connections spread over several scrapes) serves
# /metrics on a free loopback port; a real Prometheus (Debian's `prometheus`) scrapes it every
# second, with the labels a Kubernetes scrape adds (namespace, pod); once the run has ended,
# scripts/check-dashboard.py runs every panel's query through Prometheus' HTTP API and names
# each one that returns no data.
#
#   scripts/check-dashboard.sh [--replay-bin BIN] [--pack PACK] [--dashboard FILE.json]
#
# Installs the prometheus package if missing. Everything listens on 127.0.0.1 only; the run
# and Prometheus are stopped on exit. Logs stay in target/check-dashboard/.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/real-run.sh
. scripts/real-run.sh
DASHBOARD=docs/grafana-dashboard.json
extra_option() { [ "$1" = --dashboard ] && DASHBOARD=$2; }
real_run_args "[--replay-bin BIN] [--pack PACK] [--dashboard FILE.json]" "$@"
need_command prometheus prometheus
OUT=$(fresh_dir target/check-dashboard)
TSDB=$(mktemp -d)
METRICS_PORT=$(free_port)
PROM_PORT=$(free_port)
PROM=http://127.0.0.1:$PROM_PORT

RUN_PID=
PROM_PID=
cleanup() {
  for p in $RUN_PID $PROM_PID; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TSDB"
}
trap cleanup EXIT

cat >"$OUT/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: synth
    static_configs:
      - targets: ["127.0.0.1:$METRICS_PORT"]
        labels: {namespace: load, pod: synth-0}
YAML
prometheus --config.file="$OUT/prometheus.yml" --storage.tsdb.path="$TSDB" \
  --web.listen-address="127.0.0.1:$PROM_PORT" >"$OUT/prometheus.log" 2>&1 &
PROM_PID=$!
for _ in $(seq 100); do
  curl -sf --max-time 2 "$PROM/-/ready" >/dev/null && break
  kill -0 "$PROM_PID" 2>/dev/null || { cat "$OUT/prometheus.log" >&2; exit 1; }
  sleep 0.2
done
curl -sf --max-time 2 "$PROM/-/ready" >/dev/null || { echo "check-dashboard: Prometheus not ready" >&2; exit 1; }

cat >"$OUT/run.yaml" <<YAML
duration: 25s
ramp_up_delay_ms: 1000
groups:
  - count: 8
    user_id: "dash-{index}"
    meeting_id: "room-{meeting}"
    meeting_size: 4
YAML
START=$(date +%s)
echo "check-dashboard: a 25 s run of 8 clients, scraped every second by Prometheus on $PROM" >&2
rc=0
"$BIN" run --quiet --config "$OUT/run.yaml" --pack "$PACK" \
  --metrics-listen "127.0.0.1:$METRICS_PORT" >"$OUT/run.log" 2>&1 &
RUN_PID=$!
wait "$RUN_PID" || rc=$?
RUN_PID=
# 3: a threshold failed on a busy machine; the metrics are there all the same.
if [ "$rc" != 0 ] && [ "$rc" != 3 ]; then
  cat "$OUT/run.log" >&2
  echo "check-dashboard: the run failed (exit $rc)" >&2
  exit 1
fi
# Queried up to 2 s before the run's end: its last scrape was within the last second, and the
# first failed scrape after it marks every series stale.
END=$(($(date +%s) - 2))
up=$(curl -sf --max-time 5 "$PROM/api/v1/query" --data-urlencode "query=count_over_time(up{job=\"synth\"}[1h])" \
  --data-urlencode "time=$END" | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else 0)')
echo "check-dashboard: Prometheus scraped the run $up times" >&2
python3 scripts/check-dashboard.py "$DASHBOARD" "$PROM" "$START" "$END"
