#!/usr/bin/env bash
# Docker smoke test (by hand, not run by CI): build the image, then
#  1. run synth-replay from it for 5 s against its embedded relay (the config has no server_url,
#     so `run` starts the relay in-process on loopback) and check the run report: every planned
#     participant connected;
#  2. run `synth-replay relay` from the image in one container and two "pods" in two more, as the
#     Helm chart's Indexed Job runs them (POD_NAME, POD_INDEX, CLIENTS_PER_POD, SERVER_URL env,
#     insecure TLS as in values-development.yaml, a meeting spanning the two pods), and check both
#     reports and that the relay saw 2 x CLIENTS distinct participants and rejected none.
# Everything talks over 127.0.0.1 only (host network, loopback addresses).
#
#   scripts/docker-smoke.sh
#   DOCKER_HOST=unix:///tmp/docker.sock RUST_IMAGE=synth-build-base:bookworm \
#     RUNTIME_IMAGE=synth-runtime-base:bookworm scripts/docker-smoke.sh
#
# Needs a reachable Docker engine (DOCKER_HOST or the default socket); without one it says so
# and exits 77 (skipped). Where no registry is reachable, make the base images first with
# scripts/make-base-images.sh and pass them as above.
#
# Env: IMAGE (tag to build, default videocall-synthetic-clients:smoke), RUST_IMAGE,
# RUNTIME_IMAGE, CARGO_NET_OFFLINE (passed as build args when set), BUILD_NETWORK (docker build
# --network, default host so cargo can fetch crates when the daemon has no bridge),
# SMOKE_NETWORK (docker run --network, default host: the relay and the participants talk over
# loopback only), SKIP_BUILD=1 to test an existing IMAGE, CLIENTS (default 6), DOCKER_BUILD_FLAGS
# (extra `docker build` flags, e.g. "--cpuset-cpus 0" on a shared machine).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-videocall-synthetic-clients:smoke}
CLIENTS=${CLIENTS:-6}
say() { echo "docker-smoke: $*" >&2; }

if ! docker info >/dev/null 2>&1; then
  say "SKIPPED: no Docker engine reachable (set DOCKER_HOST; docs/src/deploy.md says how to start one)"
  exit 77
fi

if [[ -z ${SKIP_BUILD:-} ]]; then
  build_args=()
  for arg in RUST_IMAGE RUNTIME_IMAGE CARGO_NET_OFFLINE; do
    [[ -n ${!arg:-} ]] && build_args+=(--build-arg "$arg=${!arg}")
  done
  say "building $IMAGE ${build_args[*]}"
  # shellcheck disable=SC2086 # DOCKER_BUILD_FLAGS is a list of flags
  docker build --network "${BUILD_NETWORK:-host}" ${DOCKER_BUILD_FLAGS:-} "${build_args[@]}" -t "$IMAGE" .
fi

# The image's contract: non-root, synth-replay as entrypoint, config and pack where the chart
# expects them, metrics port declared.
inspect=$(docker image inspect "$IMAGE" --format \
  '{{.Config.User}}|{{json .Config.Entrypoint}}|{{json .Config.Cmd}}|{{json .Config.ExposedPorts}}|{{json .Config.Env}}')
say "image: $inspect"
IFS='|' read -r user entrypoint cmd ports envs <<<"$inspect"
[[ $user == 10001* ]] || { say "FAIL: image user is '$user', want 10001"; exit 1; }
[[ $entrypoint == '["synth-replay"]' ]] || { say "FAIL: entrypoint $entrypoint"; exit 1; }
[[ $cmd == '["run","--config","/config/config.yaml"]' ]] || { say "FAIL: cmd $cmd"; exit 1; }
[[ $ports == *'"9090/tcp"'* ]] || { say "FAIL: port 9090 not exposed: $ports"; exit 1; }
[[ $envs == *'PACK=/packs/default.pack'* ]] || { say "FAIL: PACK not set: $envs"; exit 1; }

work=$(mktemp -d)
name=synth-smoke-$$
cleanup() {
  docker rm -f "$name" "$name-relay" "$name-pod0" "$name-pod1" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/config" "$work/out"
chmod 0777 "$work/out"  # the container runs as uid 10001
cat >"$work/config/config.yaml" <<EOF
# No server_url: synth-replay starts its embedded relay in-process.
duration: 5s
ramp_up_delay_ms: 50
groups:
  - count: $CLIENTS
    user_id: "smoke-{index}"
    meeting_id: "smoke-{meeting}"
    meeting_size: 3
    enable_audio: true
    enable_video: true
EOF

# Run as the chart runs it: read-only root, writable /tmp, no capabilities. Metrics on loopback
# port 0 so nothing listens beyond this machine and no port can collide.
say "running $IMAGE for 5 s against the embedded relay ($CLIENTS participants)"
rc=0
timeout 180 docker run --name "$name" --network "${SMOKE_NETWORK:-host}" \
  --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges \
  -e METRICS_LISTEN=127.0.0.1:0 \
  -v "$work/config:/config:ro" -v "$work/out:/out" \
  "$IMAGE" run --config /config/config.yaml --duration 5s --report /out/report.json || rc=$?
if [[ $rc != 0 ]]; then
  say "FAIL: synth-replay exited $rc"; docker logs --tail 40 "$name" >&2 || true; exit 1
fi
[[ -s $work/out/report.json ]] || { say "FAIL: no report written"; exit 1; }

python3 - "$work/out/report.json" "$CLIENTS" <<'EOF' || exit 1
import json, sys
report, want = json.load(open(sys.argv[1])), int(sys.argv[2])
c = report["clients"]
print(f"docker-smoke: clients planned={c['planned']} connected={c['connected']} failed={c.get('failed')}",
      file=sys.stderr)
for media in ("audio", "video"):
    sent = report.get(media, {}).get("sent", {})
    if sent:
        print(f"docker-smoke: {media} sent {sent.get('packets')} packets, {sent.get('bitrate_kbps')} kbps",
              file=sys.stderr)
if c["planned"] != want or c["connected"] != c["planned"]:
    sys.exit("docker-smoke: FAIL: clients.connected != clients.planned (or planned != %d)" % want)
print("docker-smoke: ok", file=sys.stderr)
EOF

# --- 2. standalone relay + two pods ------------------------------------------------------------
port=$(python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/config/pods.yaml" <<EOF
# As the chart renders it in job mode: ids from POD_INDEX, meetings numbered across pods.
server_url: "https://127.0.0.1:$port"
duration: 5s
ramp_up_delay_ms: 50
tls:
  insecure: true
groups:
  - count: 1
    user_id: "smoke-{pod_index}-{index}"
    meeting_id: "smoke-{meeting}"
    meeting_size: 4
    enable_audio: true
    enable_video: true
EOF
say "relay on 127.0.0.1:$port (UDP), two pods of $CLIENTS participants each"
docker run -d --name "$name-relay" --network "${SMOKE_NETWORK:-host}" --read-only --cap-drop ALL \
  -v "$work/out:/out" --entrypoint synth-replay "$IMAGE" \
  relay --listen "127.0.0.1:$port" --stats-json /out/relay.json >/dev/null
for _ in $(seq 50); do
  ss -Hlun "sport = :$port" | grep -q . && break
  sleep 0.2
done
for i in 0 1; do
  docker run -d --name "$name-pod$i" --network "${SMOKE_NETWORK:-host}" \
    --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges \
    -e POD_NAME="synth-videocall-synthetic-clients-$i-smoke" -e POD_INDEX="$i" \
    -e CLIENTS_PER_POD="$CLIENTS" -e SERVER_URL="https://127.0.0.1:$port" \
    -e METRICS_LISTEN=127.0.0.1:0 \
    -v "$work/config:/config:ro" -v "$work/out:/out" \
    "$IMAGE" run --config /config/pods.yaml --report "/out/pod$i.json" >/dev/null
done
for i in 0 1; do
  rc=$(timeout 120 docker wait "$name-pod$i" || true)
  if [[ $rc != 0 ]]; then
    say "FAIL: pod $i exited ${rc:-(timeout)}"; docker logs --tail 40 "$name-pod$i" >&2 || true; exit 1
  fi
done
docker kill -s INT "$name-relay" >/dev/null   # the relay writes its stats when stopped
timeout 30 docker wait "$name-relay" >/dev/null

python3 - "$work/out" "$CLIENTS" <<'EOF'
import json, sys
out, want = sys.argv[1], int(sys.argv[2])
bad = []
for i in (0, 1):
    c = json.load(open(f"{out}/pod{i}.json"))["clients"]
    print(f"docker-smoke: pod {i}: planned={c['planned']} connected={c['connected']}", file=sys.stderr)
    if c["planned"] != want or c["connected"] != want:
        bad.append(f"pod {i} connected {c['connected']} of {c['planned']}")
relay = json.load(open(f"{out}/relay.json"))
users = relay.get("per_user", {})
meetings = sorted({u.get("meeting") for u in users.values()})
print(f"docker-smoke: relay: {relay.get('sessions_accepted')} sessions accepted, "
      f"{relay.get('sessions_rejected')} rejected, {len(users)} distinct participants in {meetings}",
      file=sys.stderr)
if len(users) != 2 * want:
    bad.append(f"relay saw {len(users)} distinct participants, want {2 * want}")
if relay.get("sessions_rejected"):
    bad.append(f"relay rejected sessions: {relay.get('rejections')}")
if bad:
    sys.exit("docker-smoke: FAIL: " + "; ".join(bad))
print("docker-smoke: ok (relay + two pods)", file=sys.stderr)
EOF
