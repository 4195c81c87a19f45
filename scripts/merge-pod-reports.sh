#!/usr/bin/env bash
# One verdict for a Job run: merge the JSON reports of every pod with `synth-replay report merge`.
#
#   scripts/merge-pod-reports.sh REPORTS_DIR [-o merged.json]
#       merges every *.json in REPORTS_DIR
#   scripts/merge-pod-reports.sh --namespace NS --job NAME [-o merged.json] [--keep DIR]
#       collects each pod's report from `kubectl logs` (the chart's job.printReport, on by default,
#       makes each pod print it between "----- BEGIN/END SYNTH-REPLAY JSON REPORT -----"), one
#       pod per completion index (the newest, when a pod was retried), then merges them
#
# SYNTH_REPLAY (default: synth-replay on PATH, else target/release or target/debug) is the binary.
# Exits with `report merge`'s code: 0 the merged report passes, 3 a threshold fails on the merged
# figures, 2 bad input (a pod without a report, a report that is not one); 1 for kubectl failures.
set -euo pipefail

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

dir="" ns="" job="" out="merged.json" keep=""
while [ $# -gt 0 ]; do
  case "$1" in
    --namespace|-n) ns=${2:?}; shift 2 ;;
    --job) job=${2:?}; shift 2 ;;
    -o|--output) out=${2:?}; shift 2 ;;
    --keep) keep=${2:?}; shift 2 ;;
    -h|--help) usage ;;
    -*) echo "merge-pod-reports: unknown option $1" >&2; usage ;;
    *) [ -z "$dir" ] || usage; dir=$1; shift ;;
  esac
done

bin=${SYNTH_REPLAY:-}
if [ -z "$bin" ]; then
  root=$(cd "$(dirname "$0")/.." && pwd)
  for b in "$(command -v synth-replay || true)" "$root/target/release/synth-replay" "$root/target/debug/synth-replay"; do
    if [ -n "$b" ] && [ -x "$b" ]; then bin=$b; break; fi
  done
fi
[ -n "$bin" ] || { echo "merge-pod-reports: no synth-replay binary (set SYNTH_REPLAY)" >&2; exit 2; }

if [ -n "$job" ]; then
  [ -z "$dir" ] || { echo "merge-pod-reports: give a folder or --job, not both" >&2; exit 2; }
  ns=${ns:-default}
  dir=${keep:-$(mktemp -d)}
  mkdir -p "$dir"
  # name, completion index, creation time; the newest pod of each index wins.
  pods=$(kubectl -n "$ns" get pods -l "job-name=$job" -o \
    jsonpath='{range .items[*]}{.metadata.annotations.batch\.kubernetes\.io/job-completion-index}{" "}{.metadata.creationTimestamp}{" "}{.metadata.name}{"\n"}{end}' \
    | sort -k1,1n -k2,2 | awk '{last[$1]=$3} END {for (i in last) print i, last[i]}' | sort -n)
  [ -n "$pods" ] || { echo "merge-pod-reports: no pods of job $job in namespace $ns" >&2; exit 2; }
  while read -r index pod; do
    file="$dir/pod-$index.json"
    kubectl -n "$ns" logs "$pod" -c synth-replay \
      | awk '/^----- BEGIN SYNTH-REPLAY JSON REPORT -----$/ {on=1; next}
             /^----- END SYNTH-REPLAY JSON REPORT -----$/ {on=0; done=1; next}
             on {print}
             END {exit done ? 0 : 1}' > "$file" || {
      echo "merge-pod-reports: pod $pod printed no complete report (still running, a runtime error, or job.printReport=false)" >&2
      exit 2
    }
    echo "merge-pod-reports: $pod -> $file" >&2
  done <<< "$pods"
fi

[ -n "$dir" ] || usage
[ -d "$dir" ] || { echo "merge-pod-reports: $dir is not a folder" >&2; exit 2; }
shopt -s nullglob
reports=()
for f in "$dir"/*.json; do
  # A merged report written into the folder on an earlier run is not a pod's.
  [ "$(realpath -m "$f")" = "$(realpath -m "$out")" ] || reports+=("$f")
done
[ ${#reports[@]} -gt 0 ] || { echo "merge-pod-reports: no *.json in $dir" >&2; exit 2; }

code=0
"$bin" report merge "${reports[@]}" -o "$out" || code=$?
echo "merge-pod-reports: ${#reports[@]} reports merged into $out (exit $code)" >&2
exit "$code"
