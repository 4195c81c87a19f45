#!/usr/bin/env bash
# Installs the system packages the build needs (Debian/Ubuntu): libopus and
# libvpx with their headers, pkg-config, and espeak-ng (synth-encode runs it to
# speak the default pack's voices). Does nothing when they are there.
# Runs apt-get directly as root, through sudo otherwise.
set -euo pipefail
need=()
pkg-config --exists opus 2>/dev/null || need+=(libopus-dev)
pkg-config --exists vpx 2>/dev/null || need+=(libvpx-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v espeak-ng >/dev/null || need+=(espeak-ng)
if ((${#need[@]} == 0)); then
  exit 0
fi
as_root=()
[ "$(id -u)" = 0 ] || as_root=(sudo)
echo "install-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" pkg-config >/dev/null
