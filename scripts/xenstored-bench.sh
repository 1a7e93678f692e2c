#!/usr/bin/env bash
# The xenstored benchmark (`make bench`): xpv-xenstored against Xen's C xenstored and the
# xpv-xs-echo ceiling, each started on its own socket in a temporary folder and stopped at the end.
# Arguments go to xpv-xs-bench: --quick (about 30 s), --json FILE, and the rest of its --help.
# Prints the figures with their units, then one `ratio NAME VALUE` line per comparison.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${XPV_BIN:-$root/build/bin}
# Xen's C daemon, runnable without Xen; ../shared sits beside the checkout and a plain clone lacks
# it, in which case xpv-xs-bench says so and compares xpv with the echo ceiling only.
cxenstored_start=$root/../shared/peers/xenstored/start-cxenstored.sh

for b in xpv-xs-bench xpv-xs-echo xpv-xenstored; do
  if [[ ! -x $bin/$b ]]; then
    echo "xenstored-bench: $bin/$b is missing: run make first" >&2
    exit 1
  fi
done

# The idle-connection load holds 1000 connections open: a descriptor each, here and in the daemon.
want=4096
hard=$(ulimit -Hn)
if [[ $hard != unlimited ]] && ((hard < want)); then want=$hard; fi
if (($(ulimit -n) < want)); then ulimit -n "$want"; fi

work=$(mktemp -d "${TMPDIR:-/tmp}/xpv-xs-bench.XXXXXX")
cleanup() {
  # xpv-xenstored and the echo server die with the bench (PR_SET_PDEATHSIG); C daemons are started
  # by their own script, so stop any left should the bench have been killed.
  local pidfile pid
  for pidfile in "$work"/*/xenstored.pid; do
    [[ -s $pidfile ]] || continue
    pid=$(<"$pidfile")
    if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == xenstored ]]; then kill "$pid" 2>/dev/null || true; fi
  done
  rm -rf "$work"
}
trap cleanup EXIT

# The default run takes about 3 minutes; the timeout only guards against a wedged daemon.
timeout 900 "$bin/xpv-xs-bench" \
  --xenstored "$bin/xpv-xenstored" --echo "$bin/xpv-xs-echo" \
  --cxenstored-start "$cxenstored_start" --work-dir "$work" "$@"
