#!/bin/bash
# The block device across processes, as a user drives it: xpv hv start; a driver domain running
# xpv-blkback (dropped to `nobody`, under seccomp); guests whose disk = [...] names it, each
# running `xpv blk` (blkfront) to write a pattern, read it back and compare, in map and copy
# mode and in the x86_32 layout; xpv destroy removes the device's nodes; a guest killed with
# kill -9 is reaped (its backend directory and home removed); xpv hv stop.
# Every wait is bounded.
#   blk_e2e_test.sh BIN_DIR
set -u
BIN=$1
XPV=$BIN/xpv
RUN=$(mktemp -d /tmp/xpv-blk-e2e-XXXXXX)
chmod 755 "$RUN"
export XPV_RUN_DIR=$RUN

cleanup() {
  "$XPV" hv stop >/dev/null 2>&1
  rm -rf "$RUN"
}
trap cleanup EXIT
. "$(dirname "$0")/../lib/e2e.sh"

"$XPV" hv start >/dev/null || fail "xpv hv start"
IMG=$RUN/disk.img
truncate -s 32M "$IMG"
chmod 666 "$IMG"  # xpv-blkback runs as nobody

# driver NAME MODE EXTRA...: a driver domain running xpv-blkback.
driver() {
  printf 'name = "%s"\nmemory = 128\nkernel = "%s/xpv-blkback"\nextra = "%s"\nxpv_grant_mode = "%s"\n' \
    "$1" "$BIN" "$3" "$2" > "$RUN/$1.cfg"
  "$XPV" create "$RUN/$1.cfg" >/dev/null || fail "create $1"
}
# guest NAME BACKEND EXTRA: a guest whose blkfront verifies 8 MiB and stays connected.
guest() {
  printf 'name = "%s"\nmemory = 64\nkernel = "%s/xpv"\nextra = "blk --verify-mib 8 --stay %s"\ndisk = [ "vdev=xvda, backend=%s, target=%s" ]\n' \
    "$1" "$BIN" "$3" "$2" "$IMG" > "$RUN/$1.cfg"
  out=$("$XPV" create "$RUN/$1.cfg") || fail "create $1: $out"
  echo "$out" | sed -n 's/.*domain \([0-9]*\), pid.*/\1/p'
}
status_done() { [ "$("$XPV" xenstore read /local/domain/$1/data/blk/status)" = done ]; }

driver blkmap map "--platform sim --seccomp --user nobody"
driver blkcopy copy "--platform sim"

for spec in "g1 blkmap" "g2 blkcopy" "g3 blkmap --x86-32 --no-persistent" "g4 blkcopy --queues 2 --ring-page-order 2"; do
  set -- $spec
  name=$1 backend=$2; shift 2
  id=$(guest "$name" "$backend" "$*")
  [ -n "$id" ] || fail "no domain id for $name"
  until_ok 30 status_done "$id" || fail "$name ($*): status $("$XPV" xenstore read /local/domain/$id/data/blk/status 2>&1)"
  verify=$("$XPV" xenstore read /local/domain/$id/data/blk/verify)
  w=$(echo "$verify" | sed -n 's/.*written-fnv=\([0-9a-f]*\).*/\1/p')
  r=$(echo "$verify" | sed -n 's/.*read-fnv=\([0-9a-f]*\).*/\1/p')
  [ -n "$w" ] && [ "$w" = "$r" ] || fail "$name: pattern differs: $verify"
  neg=$("$XPV" xenstore read /local/domain/$id/data/blk/negotiated)
  echo "ok $name ($backend $*): $neg"
  case "$*" in *x86-32*) echo "$neg" | grep -q "protocol=x86_32-abi" || fail "$name: not x86_32";; esac
  case "$backend" in blkmap) [[ "$*" == *no-persistent* ]] || echo "$neg" | grep -q "persistent=1" || fail "$name: no persistent grants";; esac
  case "$*" in *queues\ 2*) echo "$neg" | grep -q "queues=2 ring-pages=4" || fail "$name: queues/pages";; esac
  "$XPV" destroy "$name" || fail "destroy $name"
  bdom=$("$XPV" list | awk -v n="$backend" '$1 == n {print $2}')
  gone() { ! "$XPV" xenstore read /local/domain/$bdom/backend/vbd/$id/51712/state; }
  until_ok 10 gone || fail "$name: backend nodes left after destroy"
done

# A guest that dies on its own (kill -9), and nobody runs xpv destroy: the reaper xpv create left
# removes its backend directory and its home; the backend keeps serving (g6).
id=$(guest g5 blkmap "")
until_ok 30 status_done "$id" || fail "g5: status $("$XPV" xenstore read /local/domain/$id/data/blk/status 2>&1)"
kill -9 "$("$XPV" list | awk '$1 == "g5" {print $6}')" || fail "kill g5"
bdom=$("$XPV" list | awk '$1 == "blkmap" {print $2}')
reaped() { ! "$XPV" xenstore read /local/domain/$bdom/backend/vbd/$id/51712/state &&
  ! "$XPV" xenstore read /local/domain/$id/name; }
until_ok 10 reaped || fail "g5: its backend directory or home outlived it"
id=$(guest g6 blkmap "")
until_ok 30 status_done "$id" || fail "g6 after g5 died: status $("$XPV" xenstore read /local/domain/$id/data/blk/status 2>&1)"
echo "ok g5 died on its own and was reaped; g6 served after it"

# The sandboxed backend really is sandboxed.
pid=$("$XPV" list | awk '$1 == "blkmap" {print $6}')
[ "$(stat -c %U /proc/$pid)" = nobody ] || fail "blkmap does not run as nobody"
grep -q "^Seccomp:[[:space:]]*2" /proc/$pid/status || fail "blkmap is not under a seccomp filter"
"$XPV" hv stop >/dev/null || fail "xpv hv stop"
echo PASS
