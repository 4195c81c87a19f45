#!/usr/bin/env bash
# Offline check of helm/videocall-synthetic-clients (see scripts/check-chart.py).
#
#   scripts/check-chart.sh                       # lint, schema, render, kubernetes-validate
#   scripts/check-chart.sh --replay-bin target/release/synth-replay --pack packs/default.pack
#                                                # + ids distinct across pods via `synth-replay validate`
#
# Installs the pinned PyPI packages into target/chart-venv on first use (helm-python-sdk bundles
# Helm's Go library, ~75 MB; no helm binary and no cluster are needed). PYTHON picks the
# interpreter (Python >= 3.10).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=target/chart-venv
PKGS=(helm-python-sdk==0.2.2 kubernetes-validate==1.37.0)

if ! "$VENV/bin/python" -c 'import helm_python, kubernetes_validate' 2>/dev/null; then
  PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
  echo "check-chart: installing ${PKGS[*]} into $VENV" >&2
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PKGS[@]}"
fi

exec "$VENV/bin/python" scripts/check-chart.py "$@"
