#!/usr/bin/env bash
# Make the Dockerfile's two base images locally, for machines that can reach Debian's package
# archive but no image registry:
#
#   synth-build-base:bookworm    Debian bookworm + gcc, libopus-dev, libvpx-dev, pkg-config, espeak-ng, and
#                                the host's Rust toolchain (rustup's default toolchain and the
#                                cargo registry cache, copied from RUSTUP_HOME / CARGO_HOME:
#                                no toolchain can be downloaded here).
#   synth-runtime-base:bookworm  debootstrap --variant=minbase + libopus0, libvpx7, ca-certificates.
#
# Usage (as root; needs debootstrap, installed with apt-get when missing):
#   DOCKER_HOST=unix:///path/docker.sock scripts/make-base-images.sh
#   docker build --build-arg RUST_IMAGE=synth-build-base:bookworm \
#                --build-arg RUNTIME_IMAGE=synth-runtime-base:bookworm -t videocall-synthetic-clients:dev .
#
# Each image is checked as soon as it is imported, by running it (with no network, and never
# pulling: the other image need not exist, and neither need have existed before): that it holds
# what the Dockerfile's stage built on it needs, so that stage installs nothing.
#
# Env: MIRROR (Debian mirror for debootstrap; default: the host's first apt source, else
# debootstrap's own default), WORKDIR (scratch space, default target/base-images, ~2.5 GB),
# BUILD_TAG / RUNTIME_TAG (image names), SKIP_BUILD=1 or SKIP_RUNTIME=1 to make only one
# (unset, empty or 0: made).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_TAG=${BUILD_TAG:-synth-build-base:bookworm}
RUNTIME_TAG=${RUNTIME_TAG:-synth-runtime-base:bookworm}
WORKDIR=${WORKDIR:-$PWD/target/base-images}
CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup}

[[ $(id -u) == 0 ]] || { echo "make-base-images: run as root (debootstrap, chroot)" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "make-base-images: no Docker engine reachable (DOCKER_HOST?)" >&2; exit 1; }
command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap; }

if [[ -z ${MIRROR:-} ]]; then
  MIRROR=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [[ -n $MIRROR ]] || MIRROR=$(awk '$1 == "deb" { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
fi

# debootstrap DIR [extra debootstrap args...]
bootstrap() {
  local dir=$1; shift
  rm -rf "$dir"
  debootstrap "$@" bookworm "$dir" ${MIRROR:+"$MIRROR"}
  # Keep the image small: no apt lists, caches or docs beyond copyright files.
  rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb
}

# import DIR TAG [docker import --change args...]
import_image() {
  local dir=$1 tag=$2; shift 2
  tar --numeric-owner -C "$dir" -c . | docker import "$@" - "$tag"
  echo "make-base-images: $tag" >&2
}

# check_image TAG <SCRIPT: runs SCRIPT with sh in the image TAG itself (a missing image is an
# error, never a pull).
check_image() {
  local tag=$1
  docker run --rm -i --pull never --network none "$tag" sh -s \
    || { echo "make-base-images: the check of $tag failed (above)" >&2; exit 1; }
  echo "make-base-images: $tag checked" >&2
}

mkdir -p "$WORKDIR"

if [[ ${SKIP_RUNTIME:-0} == 0 ]]; then
  root=$WORKDIR/runtime
  bootstrap "$root" --variant=minbase --include=libopus0,libvpx7,ca-certificates
  import_image "$root" "$RUNTIME_TAG" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]'
  # The runtime stage: the packages it would otherwise install (its own `dpkg -s` test),
  # groupadd and useradd for its user, the CA bundle, and every library synth-replay and
  # synth-encode link (`readelf -d`), found by the dynamic loader with their own dependencies.
  check_image "$RUNTIME_TAG" <<'SH'
fail() { echo "$*" >&2; exit 1; }
dpkg -s libopus0 libvpx7 ca-certificates >/dev/null || fail "libopus0, libvpx7 or ca-certificates not installed"
for tool in groupadd useradd ldconfig ldd; do
  command -v "$tool" >/dev/null || fail "no $tool"
done
[ -s /etc/ssl/certs/ca-certificates.crt ] || fail "no CA bundle /etc/ssl/certs/ca-certificates.crt"
for so in libopus.so.0 libvpx.so.7 libgcc_s.so.1 libm.so.6 libc.so.6; do
  path=$(ldconfig -p | awk -v so="$so" '$1 == so { print $NF; exit }')
  [ -n "$path" ] || fail "$so: not known to the dynamic loader"
  if ldd "$path" | grep 'not found' >&2; then fail "$so ($path): a library it needs is missing"; fi
  echo "$so => $path"
done
SH
fi

if [[ ${SKIP_BUILD:-0} == 0 ]]; then
  root=$WORKDIR/build
  bootstrap "$root" --variant=minbase \
    --include=gcc,libc6-dev,make,pkg-config,libopus-dev,libvpx-dev,espeak-ng,ca-certificates,git
  # Same layout as the official rust images: /usr/local/{cargo,rustup}, cargo on PATH.
  toolchain=$(RUSTUP_HOME=$RUSTUP_HOME rustup default | awk '{ print $1 }')
  mkdir -p "$root/usr/local/cargo/bin" "$root/usr/local/rustup/toolchains"
  cp -a "$CARGO_HOME/bin/." "$root/usr/local/cargo/bin/"
  [[ -d $CARGO_HOME/registry ]] && cp -a "$CARGO_HOME/registry" "$root/usr/local/cargo/"
  # The toolchain without its HTML docs (about half its size).
  tar -C "$(readlink -f "$RUSTUP_HOME/toolchains/$toolchain")" --exclude=./share/doc -c . \
    | { mkdir -p "$root/usr/local/rustup/toolchains/$toolchain" \
        && tar -C "$root/usr/local/rustup/toolchains/$toolchain" -x; }
  printf 'version = "12"\ndefault_toolchain = "%s"\nprofile = "minimal"\nauto_self_update = "disable"\n' \
    "$toolchain" > "$root/usr/local/rustup/settings.toml"
  import_image "$root" "$BUILD_TAG" \
    --change 'ENV RUSTUP_HOME=/usr/local/rustup' \
    --change 'ENV CARGO_HOME=/usr/local/cargo' \
    --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]'
  # The build stage: the packages it would otherwise install (its own `dpkg -s` test) and the
  # toolchain.
  check_image "$BUILD_TAG" <<'SH'
set -e
dpkg -s libopus-dev libvpx-dev pkg-config espeak-ng >/dev/null
cargo --version && rustc --version && pkg-config --modversion opus vpx
SH
fi
