# synth-replay with the default pack baked in.
#
#   docker build -t videocall-synthetic-clients:dev .
#   docker run --rm --network host videocall-synthetic-clients:dev \
#       run --config /config/config.yaml       # mount a config at /config (see docs/src/contracts.md)
#
# Base images are build arguments so the image also builds where only locally made images exist
# (scripts/make-base-images.sh makes both from Debian packages and the host's Rust toolchain):
#   docker build --build-arg RUST_IMAGE=synth-build-base:bookworm \
#                --build-arg RUNTIME_IMAGE=synth-runtime-base:bookworm -t ... .
# The build stage needs libopus-dev, libvpx-dev and pkg-config, and espeak-ng for the default
# pack's speech (synth-encode runs it there); the runtime stage libopus0 and libvpx7 (bookworm's
# libvpx). Each stage installs them with apt only when they are missing.
# CARGO_NET_OFFLINE=true builds from the crates already in the build image's cargo registry.

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS build
ARG CARGO_NET_OFFLINE=false
ENV CARGO_NET_OFFLINE=${CARGO_NET_OFFLINE} \
    CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0

RUN if ! dpkg -s libopus-dev libvpx-dev pkg-config espeak-ng >/dev/null 2>&1; then \
        apt-get update \
        && apt-get install -y --no-install-recommends libopus-dev libvpx-dev pkg-config espeak-ng \
        && rm -rf /var/lib/apt/lists/*; \
    fi

WORKDIR /src

# Dependencies in their own layer: the manifests with stub sources, built once; this layer is
# reused until a manifest or Cargo.lock changes. Every target file a manifest names
# ([[bin]]/[[test]]/[[bench]]/[[example]] path or name, build script) gets a stub, because cargo
# refuses a workspace whose declared targets are missing.
COPY Cargo.toml Cargo.lock ./
COPY common/Cargo.toml common/
COPY encoder/Cargo.toml encoder/
COPY relay/Cargo.toml relay/
COPY report/Cargo.toml report/
COPY scenario/Cargo.toml scenario/
COPY replayer/Cargo.toml replayer/
COPY benches/Cargo.toml benches/
ARG STUB="// docker-deps-stub"
RUN set -eu; \
    for manifest in */Cargo.toml; do \
        crate=${manifest%/Cargo.toml}; \
        mkdir -p "$crate/src"; echo "$STUB" > "$crate/src/lib.rs"; \
        awk ' \
            /^\[/ { if (kind != "" && name != "" && path == "") print default_path(kind, name); \
                    else if (path != "") print path; \
                    kind = ""; name = ""; path = ""; \
                    if ($0 ~ /^\[\[(bin|test|bench|example)\]\]/) { kind = $0; gsub(/[][]/, "", kind) } } \
            /^build *=/ { v = $0; sub(/^[^"]*"/, "", v); sub(/".*/, "", v); print v } \
            kind != "" && /^name *=/ { name = $0; sub(/^[^"]*"/, "", name); sub(/".*/, "", name) } \
            kind != "" && /^path *=/ { path = $0; sub(/^[^"]*"/, "", path); sub(/".*/, "", path) } \
            END { if (kind != "" && name != "" && path == "") print default_path(kind, name); \
                  else if (path != "") print path } \
            function default_path(k, n) { \
                return (k == "bin" ? "src/bin/" : k == "test" ? "tests/" : k == "bench" ? "benches/" : "examples/") n ".rs" }' \
            "$manifest" \
        | while read -r target; do \
            mkdir -p "$crate/$(dirname "$target")"; printf '%s\nfn main() {}\n' "$STUB" > "$crate/$target"; \
        done; \
    done; \
    cargo build --release --locked -p synth-encoder -p synth-replayer --bins

# The real sources: the whole context, which .dockerignore limits to the manifests, the crates
# and assets/. COPY keeps the context's modification times, which can be older than the stub
# build above: touch the sources so cargo rebuilds the workspace crates. Stubs that no real file
# replaced are removed, so they can't become targets.
COPY . .
RUN grep -rlx -e "$STUB" --include='*.rs' common encoder relay report scenario replayer benches | xargs -r rm -f \
    && find common encoder relay report scenario replayer benches -name '*.rs' -exec touch {} + \
    && cargo build --release --locked -p synth-encoder -p synth-replayer --bins \
    && install -D -m 0755 target/release/synth-encode target/release/synth-replay -t /out/bin \
    && /out/bin/synth-encode build --audio speech --video bars \
        --rendition 640x360@500 --rendition 320x180@150 --duration 10s \
        -o /out/packs/default.pack \
    && /out/bin/synth-encode inspect /out/packs/default.pack

# ---------------------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE} AS runtime

RUN if ! dpkg -s libopus0 libvpx7 ca-certificates >/dev/null 2>&1; then \
        apt-get update \
        && apt-get install -y --no-install-recommends libopus0 libvpx7 ca-certificates \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && groupadd --gid 10001 synth \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin synth

COPY --from=build /out/bin/ /usr/local/bin/
COPY --from=build /out/packs/default.pack /packs/default.pack

ENV PACK=/packs/default.pack \
    CONFIG=/config/config.yaml \
    METRICS_LISTEN=0.0.0.0:9090
USER 10001:10001
EXPOSE 9090
ENTRYPOINT ["synth-replay"]
CMD ["run", "--config", "/config/config.yaml"]
