#!/bin/bash
# The toolstack end to end, across processes: xpv hv start; xpv create of a guest that writes
# data/hello = world through its store ring; the store shows it; kill -9 of the guest fires
# @releaseDomain and removes the nodes it owned, and the domain's reaper the rest; xpv destroy;
# xpv hv stop ends every reaper. Every wait is bounded.
#   e2e_test.sh XPV RING_GUEST
set -u
XPV=$1
GUEST=$2
RUN=$(mktemp -d /tmp/xpv-e2e-XXXXXX)
export XPV_RUN_DIR=$RUN
WATCH_PID=

cleanup() {
  [ -n "$WATCH_PID" ] && kill "$WATCH_PID" 2>/dev/null
  "$XPV" hv stop >/dev/null 2>&1
  rm -rf "$RUN"
}
trap cleanup EXIT
. "$(dirname "$0")/../lib/e2e.sh"

"$XPV" hv start || fail "xpv hv start"
[ -S "$RUN/hv.sock" ] && [ -S "$RUN/xenstored.sock" ] || fail "no sockets in $RUN"

# A broken configuration: FILE:LINE, nonzero, no domain.
printf 'name = "bad"\nmemory = "lots"\nkernel = "%s"\n' "$GUEST" > "$RUN/bad.cfg"
out=$("$XPV" create "$RUN/bad.cfg" 2>&1) && fail "bad.cfg accepted"
echo "$out" | grep -q "bad.cfg:2:" || fail "bad.cfg error without FILE:LINE: $out"
"$XPV" list | grep -qw bad && fail "bad.cfg left a domain"

printf 'name = "guest1"\nmemory = 16\nvcpus = 2\nkernel = "%s"\nextra = "hello world"\n' \
  "$GUEST" > "$RUN/guest1.cfg"
out=$("$XPV" create "$RUN/guest1.cfg") || fail "xpv create: $out"
echo "$out"
ID=$(echo "$out" | sed -n 's/.*domain \([0-9]*\), pid.*/\1/p')
PID=$(echo "$out" | sed -n 's/.*pid \([0-9]*\).*/\1/p')
[ -n "$ID" ] && [ -n "$PID" ] || fail "create printed no id/pid: $out"
"$XPV" list | grep -w guest1 || fail "guest1 not in xpv list"
[ "$("$XPV" xenstore read /local/domain/$ID/name)" = guest1 ] || fail "no name node"
# vcpus reaches the hypervisor (xpv list) and the store, with the other nodes xl writes.
"$XPV" list | awk '$1 == "guest1" { print $4 }' | grep -qx 2 || fail "xpv list: vcpus not 2"
H=/local/domain/$ID
for n in 0 1; do
  [ "$("$XPV" xenstore read $H/cpu/$n/availability)" = online ] || fail "no cpu/$n/availability"
done
"$XPV" xenstore read $H/cpu/2/availability >/dev/null 2>&1 && fail "cpu/2 for a 2-vcpu domain"
[ "$("$XPV" xenstore read $H/domid)" = "$ID" ] || fail "no domid node"
[ "$("$XPV" xenstore read $H/memory/target)" = 16384 ] || fail "no memory/target"
[ "$("$XPV" xenstore read $H/memory/static-max)" = 16384 ] || fail "no memory/static-max"
VM=$("$XPV" xenstore read $H/vm) || fail "no vm node"
[ "$("$XPV" xenstore read $VM/name)" = guest1 ] || fail "no $VM/name"
[ "$("$XPV" xenstore read $VM/uuid)" = "${VM#/vm/}" ] || fail "no $VM/uuid"

hello_written() { [ "$("$XPV" xenstore read /local/domain/$ID/data/hello)" = world ]; }
until_ok 10 hello_written || fail "the guest's ring write did not reach the store"
"$XPV" xenstore ls /local/domain | grep -q 'hello = "world"' || fail "xenstore ls lacks hello"

"$XPV" xenstore watch @releaseDomain -n 2 -t 10000 > "$RUN/watch.out" &
WATCH_PID=$!
watch_registered() { [ "$(wc -l < "$RUN/watch.out")" -ge 1 ]; }
until_ok 5 watch_registered || fail "the watch did not fire on registration"

kill -9 "$PID" || fail "kill guest"
for _ in $(seq 100); do kill -0 "$WATCH_PID" 2>/dev/null || break; sleep 0.1; done
wait "$WATCH_PID" || fail "no @releaseDomain after kill -9 ($(cat "$RUN/watch.out"))"
WATCH_PID=
[ "$(wc -l < "$RUN/watch.out")" -eq 2 ] || fail "watch output: $(cat "$RUN/watch.out")"
"$XPV" xenstore read /local/domain/$ID/data/hello >/dev/null 2>&1 &&
  fail "the dead domain's nodes survived"
# Nobody ran xpv destroy: the reaper xpv create left for the domain removes the toolstack's nodes
# (its home, dom0's, and /vm/<uuid>) and ends.
home_gone() { ! "$XPV" xenstore read /local/domain/$ID/name && ! "$XPV" xenstore read $VM/name; }
until_ok 10 home_gone || fail "the dead domain's home or $VM survived its reaper"
reaper_gone() { ! pgrep -f "reap --domid $ID --pid $PID " >/dev/null; }
until_ok 10 reaper_gone || fail "the reaper of domain $ID did not end"
grep -q "domain $ID died" "$RUN/reap-guest1.log" || fail "reap-guest1.log: $(cat "$RUN/reap-guest1.log")"

# xpv destroy: the domain, its process and its home go.
UUID2=0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9
printf 'name = "guest2"\nuuid = "%s"\nmemory = 16\nkernel = "%s"\nextra = "k v"\n' "$UUID2" \
  "$GUEST" > "$RUN/guest2.cfg"
out=$("$XPV" create "$RUN/guest2.cfg") || fail "xpv create guest2: $out"
ID2=$(echo "$out" | sed -n 's/.*domain \([0-9]*\), pid.*/\1/p')
k_written() { [ "$("$XPV" xenstore read /local/domain/$ID2/data/k)" = v ]; }
until_ok 10 k_written || fail "guest2's ring write did not reach the store"
[ "$("$XPV" xenstore read /local/domain/$ID2/vm)" = /vm/$UUID2 ] || fail "uuid not taken from cfg"
"$XPV" list | awk '$1 == "guest2" { print $4 }' | grep -qx 1 || fail "xpv list: vcpus not 1"
sed 's/guest2/guest3/' "$RUN/guest2.cfg" > "$RUN/guest3.cfg"
out=$("$XPV" create "$RUN/guest3.cfg" 2>&1) && fail "a second domain with guest2's uuid: $out"
"$XPV" list | grep -qw guest3 && fail "guest3 created with a taken uuid"
"$XPV" destroy guest2 || fail "xpv destroy guest2"
"$XPV" list | grep -qw guest2 && fail "guest2 still listed"
"$XPV" xenstore read /local/domain/$ID2/name >/dev/null 2>&1 && fail "guest2's home survived"
"$XPV" xenstore read /vm/$UUID2/name >/dev/null 2>&1 && fail "guest2's /vm/$UUID2 survived"
# Its reaper sees the release too, and ends: it cleans up beside xpv destroy (removing what is
# gone already is harmless) or finds the home gone and touches nothing.
reaper2_done() { grep -q "domain $ID2 died" "$RUN/reap-guest2.log"; }
until_ok 10 reaper2_done || fail "reap-guest2.log: $(cat "$RUN/reap-guest2.log")"

"$XPV" hv stop || fail "xpv hv stop"
for f in hv xenstored; do [ -e "$RUN/$f.pid" ] && fail "$f.pid left"; done
no_reapers() { ! pgrep -f "run-dir $RUN reap" >/dev/null; }
until_ok 10 no_reapers || fail "reapers outlived xpv hv stop: $(pgrep -af "run-dir $RUN reap")"
echo PASS
