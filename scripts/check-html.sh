#!/usr/bin/env bash
# The HTML report in a real browser: a short real run against the embedded relay writes its
# report as JSON and as HTML (`run --report --html`), headless Chromium opens the page
# (file:// only, no network), and scripts/check-html.py checks what it rendered.
#
#   scripts/check-html.sh [--replay-bin BIN] [--pack PACK]   # run, render, check
#   scripts/check-html.sh --page FILE.html                   # check a page already written
#
# Leaves the page, the DOM, the console log and a screenshot (1280 px wide, HEIGHT tall,
# 3000 by default) in target/check-html/ to look at. Installs Debian's chromium if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/real-run.sh
. scripts/real-run.sh
PAGE=
extra_option() { [ "$1" = --page ] && PAGE=$2; }
real_run_args "[--replay-bin BIN] [--pack PACK] | --page FILE.html" "$@"
need_command chromium chromium
OUT=$(fresh_dir target/check-html)
PROFILE=$(mktemp -d)
trap 'rm -rf "$PROFILE"' EXIT

REPORT=()
if [ -z "$PAGE" ]; then
  echo "check-html: a 6 s run of 6 clients against the embedded relay" >&2
  rc=0
  "$BIN" run --quiet --pack "$PACK" --duration 6s \
    --report "$OUT/report.json" --html "$OUT/report.html" >"$OUT/summary.txt" || rc=$?
  # 3: a threshold failed on a busy machine; the page must render all the same.
  if [ "$rc" != 0 ] && [ "$rc" != 3 ]; then
    cat "$OUT/summary.txt" >&2
    echo "check-html: the run failed (exit $rc)" >&2
    exit 1
  fi
  PAGE=$OUT/report.html
  REPORT=("$OUT/report.json")
else
  cp "$PAGE" "$OUT/report.html"
  PAGE=$OUT/report.html
fi

# No network: only the file itself is opened, background services are off, and any host
# name resolves to nothing (a page that tried to load one would log an error).
chrome() {
  timeout 120 chromium --headless --no-sandbox --disable-gpu --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-default-apps --disable-extensions --host-resolver-rules="MAP * ~NOTFOUND" \
    --user-data-dir="$PROFILE" "$@" "file://$PAGE"
}
chrome --enable-logging=stderr --v=0 --dump-dom >"$OUT/dom.html" 2>"$OUT/console.log"
chrome --screenshot="$OUT/report.png" --window-size="1280,${HEIGHT:-3000}" \
  >/dev/null 2>>"$OUT/screenshot.log"
[ -s "$OUT/report.png" ] || { echo "check-html: no screenshot" >&2; exit 1; }
python3 scripts/check-html.py "$PAGE" "$OUT/dom.html" "$OUT/console.log" "${REPORT[@]}"
echo "check-html: screenshot $OUT/report.png" >&2
