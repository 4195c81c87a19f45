#!/usr/bin/env bash
# Runs the fuzz targets of fuzz/ (cargo-fuzz, nightly) for SECONDS each
# (default 60), every target or those named. New inputs the fuzzer finds go
# to target/fuzz-corpus/TARGET, not to the committed seed corpus; a crash
# stops the script with the fuzzer's report and the input under
# fuzz/artifacts/TARGET/.
#
#   scripts/fuzz.sh                 # every target, 60 s each
#   scripts/fuzz.sh 600 pack_raw    # one target, 10 minutes
set -euo pipefail

secs=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(pack_raw pack_checksummed wire_seq config_plan)
fi
root=$(cd "$(dirname "$0")/.." && pwd)

if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
if ! command -v cargo-fuzz >/dev/null; then
  cargo install cargo-fuzz --locked
fi

cd "$root/fuzz"
for t in "${targets[@]}"; do
  work="$root/target/fuzz-corpus/$t"
  mkdir -p "$work"
  log="$root/target/fuzz-corpus/$t.log"
  echo "fuzz $t for ${secs}s"
  if ! cargo +nightly fuzz run "$t" "$work" "corpus/$t" -- \
      -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz $t: FAILED (input under fuzz/artifacts/$t/)" >&2
    exit 1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  echo "fuzz $t: ${runs:-?} executions, no crash"
done
