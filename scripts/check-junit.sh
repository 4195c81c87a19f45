#!/usr/bin/env bash
# The JUnit XML as CI systems read it: a short real run against the embedded relay (a capacity
# search of two 2 s steps, one threshold passing and one failing on purpose) writes its report
# and `--junit` XML, and `report junit` writes the XML again from the report. Both files are
# validated against the JUnit schema of Jenkins' xUnit plugin (junit-10.xsd, taken from pytest's
# source distribution on PyPI, where pytest's own tests use it; pinned by hash), then read by
# junitparser, whose counts, names and failure messages must match the report's verdicts
# (scripts/check-junit.py).
#
#   scripts/check-junit.sh [--replay-bin BIN] [--pack PACK]
#
# Installs the pinned PyPI packages into target/junit-venv and the schema into
# target/junit-schema on first use. The run's files stay in target/check-junit/.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/real-run.sh
. scripts/real-run.sh
real_run_args "[--replay-bin BIN] [--pack PACK]" "$@"
OUT=$(fresh_dir target/check-junit)

VENV=target/junit-venv
PKGS=(xmlschema==4.3.2 junitparser==5.0.3)
if ! "$VENV/bin/python" -c 'import xmlschema, junitparser' 2>/dev/null; then
  echo "check-junit: installing ${PKGS[*]} into $VENV" >&2
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PKGS[@]}"
fi

# The schema, from pytest's sdist (the wheel has no tests): the archive and the file both pinned.
XSD=target/junit-schema/junit-10.xsd
XSD_SHA256=a1a816f58d1bf95ebabf371994df0b9246dee66ea9572fbec4f9296f1b2c0ff6
if ! echo "$XSD_SHA256  $XSD" | sha256sum --check --status 2>/dev/null; then
  echo "check-junit: taking junit-10.xsd from pytest 9.2.0's source distribution (PyPI)" >&2
  rm -rf target/junit-schema && mkdir -p target/junit-schema
  "$VENV/bin/pip" download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
    --require-hashes -d target/junit-schema -r /dev/stdin <<'REQ'
pytest==9.2.0 --hash=sha256:97c4f3b1f3c7414aa36465e09b8220f1d03627993bd51b1282e193753c80557b
REQ
  tar -xzf target/junit-schema/pytest-9.2.0.tar.gz -C target/junit-schema --strip-components=3 \
    pytest-9.2.0/testing/example_scripts/junit-10.xsd
  echo "$XSD_SHA256  $XSD" | sha256sum --check --quiet
fi

cat >"$OUT/run.yaml" <<'YAML'
ramp_up_delay_ms: 0
search: {start: 2, step: 2, max: 4, hold: 2s, meeting_size: 2, ignore_saturation: true}
thresholds:
  connect_success_rate: ">= 0"
  audio_latency_p99_ms: "< 0"
YAML
echo "check-junit: a capacity search of two 2 s steps against the embedded relay" >&2
rc=0
"$BIN" run --quiet --config "$OUT/run.yaml" --pack "$PACK" \
  --report "$OUT/report.json" --junit "$OUT/run.xml" >"$OUT/summary.txt" 2>"$OUT/stderr.txt" || rc=$?
# 3: the threshold that cannot hold failed, as meant; anything else is a failed run.
if [ "$rc" != 3 ]; then
  cat "$OUT/summary.txt" "$OUT/stderr.txt" >&2
  echo "check-junit: the run exited $rc, not 3 (its failing threshold)" >&2
  exit 1
fi
"$BIN" report junit "$OUT/report.json" -o "$OUT/report.xml"

exec "$VENV/bin/python" scripts/check-junit.py "$XSD" "$OUT/report.json" "$OUT/run.xml" "$OUT/report.xml"
