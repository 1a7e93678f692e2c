#!/usr/bin/env bash
# The main job, for now: start xpv-xenstored and drive it with Debian's unmodified xenstore-utils
# and Xen's own test-xenstore, exactly as on a Xen host (they find it through XENSTORED_PATH).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin="$top/build/bin"
run=$(mktemp -d /tmp/xpv-demo.XXXXXX)
daemon_pid=""
cleanup() {
  [[ -n "$daemon_pid" ]] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  rm -rf "$run"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "starting xpv-xenstored (socket $run/socket, state in $run/state)"
"$bin/xpv-xenstored" --socket "$run/socket" --state-dir "$run/state" 2>"$run/xenstored.log" &
daemon_pid=$!
for _ in $(seq 100); do [[ -S "$run/socket" ]] && break; sleep 0.05; done
[[ -S "$run/socket" ]] || { cat "$run/xenstored.log"; exit 1; }
export XENSTORED_PATH="$run/socket"

step "Debian's xenstore-utils, unmodified, against xpv-xenstored"
show xenstore-write /local/domain/1/name demo-guest /local/domain/1/memory/target 524288
show xenstore-write /local/domain/1/device/vbd/51712/state 1
show xenstore-chmod /local/domain/1 n1 r0
show xenstore-read /local/domain/1/name
show xenstore-list /local/domain/1
show xenstore-exists /local/domain/1/device/vbd/51712 && echo "exists"
show xenstore-ls -fp /local/domain/1

step "a watch: xenstore-watch sees the frontend's state change"
xenstore-watch -n 2 /local/domain/1/device/vbd >"$run/watch.out" &
watch_pid=$!
sleep 0.3
show xenstore-write /local/domain/1/device/vbd/51712/state 4
wait "$watch_pid" || true
sed 's/^/  event: /' "$run/watch.out"

show xenstore-rm /local/domain/1/device
show xenstore-ls -f /local/domain/1

step "restart: the store survives (--state-dir)"
kill "$daemon_pid"; wait "$daemon_pid" 2>/dev/null || true
"$bin/xpv-xenstored" --socket "$run/socket" --state-dir "$run/state" 2>>"$run/xenstored.log" &
daemon_pid=$!
for _ in $(seq 100); do [[ -S "$run/socket" ]] && break; sleep 0.05; done
show xenstore-read /local/domain/1/name

if [[ -x /usr/lib/xen-4.17/bin/test-xenstore ]]; then
  step "Xen's own test-xenstore against xpv-xenstored"
  /usr/lib/xen-4.17/bin/test-xenstore
fi
step "done"
