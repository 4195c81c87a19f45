# shellcheck shell=bash
# Shared by the checks that run synth-replay for real (sourced, not run):
# check-html.sh, check-metrics.sh and check-dashboard.sh.
#
#   real_run_args USAGE "$@"   # --replay-bin BIN, --pack PACK, and the caller's own
#                              # options through its `extra_option NAME VALUE` (true when taken)
#   need_command CMD PACKAGE   # Debian's PACKAGE, installed when CMD is missing
#   free_port                  # a free TCP port on 127.0.0.1
#   fresh_dir DIR              # DIR emptied and made; prints its absolute path

# The run's binary and pack: the callers read them.
# shellcheck disable=SC2034
BIN=target/release/synth-replay
# shellcheck disable=SC2034
PACK=packs/default.pack

real_run_args() {
  local usage=$1
  shift
  while [ $# -gt 0 ]; do
    # shellcheck disable=SC2034 # BIN and PACK are the caller's
    case "$1" in
      --replay-bin) BIN=$2; shift 2 ;;
      --pack) PACK=$2; shift 2 ;;
      *)
        if [ $# -ge 2 ] && declare -F extra_option >/dev/null && extra_option "$1" "$2"; then
          shift 2
        else
          echo "usage: $0 $usage" >&2
          exit 2
        fi
        ;;
    esac
  done
}

need_command() {
  command -v "$1" >/dev/null && return 0
  echo "$(basename "$0" .sh): installing $2 (for $1)" >&2
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "$2" >/dev/null
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

fresh_dir() {
  rm -rf "$1" && mkdir -p "$1" && (cd "$1" && pwd)
}
