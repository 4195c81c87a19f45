#!/usr/bin/env bash
# Runs the fuzz targets of fuzz/ (cargo-fuzz, nightly) for SECONDS each
# (default 60), every target or those named. New inputs the fuzzer finds go
# to target/fuzz-corpus/TARGET, not to the committed seed corpus; a crash
# stops the script with the fuzzer's report and the input under
# fuzz/artifacts/TARGET/. FUZZ_JOBS targets run at once (default 1; each
# fuzzer uses one core, and still gets its SECONDS).
#
#   scripts/fuzz.sh                 # every target, 60 s each
#   scripts/fuzz.sh 600 pack_raw    # one target, 10 minutes
#   FUZZ_JOBS=2 scripts/fuzz.sh     # two targets at a time
#   scripts/fuzz.sh --tools         # only install what it needs (nightly, cargo-fuzz)
set -euo pipefail

tools_only=false
if [ "${1:-}" = --tools ]; then
  tools_only=true
  shift
fi
secs=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(pack_raw pack_checksummed wire_seq frame_reader config_plan)
fi
root=$(cd "$(dirname "$0")/.." && pwd)

if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
# A debug build of cargo-fuzz compiles in far less time; it only drives the build and the
# fuzzers, which are built optimized (and sanitized) all the same.
if ! command -v cargo-fuzz >/dev/null; then
  cargo install cargo-fuzz --locked --debug
fi
if $tools_only; then
  exit 0
fi

jobs=${FUZZ_JOBS:-1}
case "$jobs" in '' | *[!0-9]* | 0) echo "FUZZ_JOBS must be a whole number of 1 or more" >&2; exit 2 ;; esac

cd "$root/fuzz"
# Every target built once, before any runs (runs at once would wait on each other's build).
for t in "${targets[@]}"; do
  cargo +nightly fuzz build "$t"
done

# One target for SECONDS; its log to target/fuzz-corpus/TARGET.log.
fuzz_one() {
  local t=$1 work log runs
  work="$root/target/fuzz-corpus/$t"
  mkdir -p "$work"
  log="$root/target/fuzz-corpus/$t.log"
  echo "fuzz $t for ${secs}s"
  if ! cargo +nightly fuzz run "$t" "$work" "corpus/$t" -- \
      -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz $t: FAILED (input under fuzz/artifacts/$t/)" >&2
    return 1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  echo "fuzz $t: ${runs:-?} executions, no crash"
}

failed=0
running=0
for t in "${targets[@]}"; do
  if ((running >= jobs)); then
    wait -n || failed=1
    running=$((running - 1))
  fi
  fuzz_one "$t" &
  running=$((running + 1))
done
while ((running > 0)); do
  wait -n || failed=1
  running=$((running - 1))
done
exit "$failed"
