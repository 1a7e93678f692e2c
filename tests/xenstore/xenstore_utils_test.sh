#!/bin/bash
# Debian's xenstore-utils against xpv-xenstored must behave as against Xen's C xenstored: the same
# script of commands runs against both daemons and their stdout+stderr and exit codes must match.
# Without the C daemon (../shared or xen-utils-4.17 absent) the transcript is compared with the one
# recorded from Xen 4.17 in xenstore_utils_expected.txt.
#
# Usage: xenstore_utils_test.sh            test (exit 0 pass, 1 fail, 77 skip)
#        xenstore_utils_test.sh --record   rewrite xenstore_utils_expected.txt from Xen's daemon
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/xs_lib.sh"
expected_file="$here/xenstore_utils_expected.txt"

for t in read write ls list exists rm chmod watch; do
  command -v "xenstore-$t" >/dev/null || skip "xenstore-$t is absent (Debian package xenstore-utils)"
done

# One command: "$ cmd", its stdout+stderr, "[exit N]". Each bounded to 10 s.
run() {
  echo "\$ $*"
  timeout 10 "$@" 2>&1
  echo "[exit $?]"
}

# watch_case N KEY [PATH VALUE]...: xenstore-watch -n N KEY in the background; once it has printed
# the event WATCH fires on registration (or exited), writes PATH=VALUE pairs, then waits for it.
watch_case() {
  local n=$1 key=$2; shift 2
  # A fresh file each time: the background job truncates it only once it runs, and an old one
  # would look like the first event already printed.
  local out
  out=$(mktemp "$XS_TMP/watch.XXXXXX")
  echo "\$ xenstore-watch -n $n $key  # while writing: $*"
  timeout 10 xenstore-watch -n "$n" "$key" >"$out" 2>&1 &
  local wp=$!
  for _ in $(seq 200); do
    [ -s "$out" ] && break
    kill -0 "$wp" 2>/dev/null || break
    sleep 0.025
  done
  while [ $# -ge 2 ]; do
    xenstore-write "$1" "$2" || echo "(write $1 failed)"
    shift 2
  done
  wait "$wp"
  local rc=$?
  cat "$out"
  echo "[exit $rc]"
}

# The script. Paths live under /t (and relative rel/, i.e. /local/domain/0/rel) so that the
# daemons' differing initial trees do not matter.
script() {
  # write / read
  run xenstore-write /t/a 1
  run xenstore-write /t/b hello /t/c/d "two words"
  run xenstore-read /t/a
  run xenstore-read /t/a /t/b /t/c/d
  run xenstore-read -p /t/a
  run xenstore-read /t/c
  run xenstore-read /t/missing
  run xenstore-read /t/a /t/missing /t/b
  run xenstore-read /t/a/
  run xenstore-read ""
  run xenstore-write /t/e
  run xenstore-write /t//x v
  run xenstore-write '/t/bad char' v
  run xenstore-write /t/esc 'a\x41\tb\\c'
  run xenstore-read /t/esc
  run xenstore-read -R /t/esc
  run xenstore-write -R /t/raw 'a\x41'
  run xenstore-read /t/raw
  run xenstore-write /t/empty ""
  run xenstore-read /t/empty
  run xenstore-write rel/x relative
  run xenstore-read rel/x
  run xenstore-read /local/domain/0/rel/x
  run xenstore-write "/t/$(printf 'l%.0s' $(seq 3100))" long
  # directories
  run xenstore-ls /t
  run xenstore-ls -f /t
  run xenstore-ls -p /t
  run xenstore-ls /t/c
  run xenstore-ls /t/missing
  run xenstore-ls /t//
  run xenstore-list /t
  run xenstore-list -p /t
  run xenstore-list /t/a
  run xenstore-list /t/c /t
  run xenstore-list /t/missing
  # exists
  run xenstore-exists /t/a
  run xenstore-exists /t/c
  run xenstore-exists /t/missing
  run xenstore-exists /t/a /t/missing
  run xenstore-exists /t/a/
  # chmod
  run xenstore-chmod /t/a r1
  run xenstore-chmod /t/b n0 r5 w7
  run xenstore-chmod -r /t/c b2
  run xenstore-chmod -u /t/c/d r3
  run xenstore-chmod /t/a xx
  run xenstore-chmod /t/missing r1
  run xenstore-chmod /t/a
  run xenstore-ls -p /t
  # rm
  run xenstore-rm /t/b
  run xenstore-read /t/b
  run xenstore-rm /t/missing
  run xenstore-rm /t/missing/deeper
  run xenstore-rm -t /t/c/d
  run xenstore-exists /t/c
  run xenstore-rm /t/a /t/esc
  run xenstore-rm /t//x
  run xenstore-ls -f /t
  # watch (-n: exit after that many events; the first fires on registration)
  watch_case 1 /t/w
  watch_case 3 /t/w /t/w/x 1 /t/w 2
  watch_case 2 /t/w/deep/er /t/w/deep/er/x 1
  watch_case 2 /t/other /t/unrelated 1 /t/other/y 2
  watch_case 2 rel/w rel/w/z 1
  watch_case 1 /t//w
  watch_case 1 @introduceDomain
  run xenstore-rm /t
  run xenstore-ls /t
}

transcript() {  # transcript SOCKET (runs of 21+ "l" of the long path shortened)
  XENSTORED_PATH=$1 script | sed -E 's/(l{20})l+/\1.../g'
}

if [ "${1:-}" = --record ]; then
  why=$(xs_xen_unavailable); [ -z "$why" ] || die "$why"
  xs_start_xen "$XS_TMP/xen"
  transcript "$XS_TMP/xen/socket" >"$expected_file"
  echo "recorded $(grep -c '^\$' "$expected_file") commands into $expected_file"
  exit 0
fi

xs_start_xpv "$XS_TMP/xpv"
xpv_pid=$XS_PID
transcript "$XS_TMP/xpv/socket" >"$XS_TMP/xpv.txt"
kill -0 "$xpv_pid" 2>/dev/null || { cat "$XS_TMP/xpv/xpv-xenstored.log" >&2; die "xpv-xenstored died"; }

why=$(xs_xen_unavailable)
if [ -z "$why" ]; then
  xs_start_xen "$XS_TMP/xen"
  transcript "$XS_TMP/xen/socket" >"$XS_TMP/ref.txt"
  ref="Xen's xenstored (live)"
  cmp -s "$XS_TMP/ref.txt" "$expected_file" ||
    echo "note: Xen's live transcript differs from the recorded $expected_file (re-record with --record?)"
else
  echo "Xen's xenstored unavailable ($why): comparing with the recorded transcript"
  cp "$expected_file" "$XS_TMP/ref.txt"
  ref="recorded transcript of Xen's xenstored"
fi

if ! diff -u --label "$ref" --label xpv-xenstored "$XS_TMP/ref.txt" "$XS_TMP/xpv.txt"; then
  die "xenstore-utils behave differently against xpv-xenstored (diff above: - $ref, + xpv)"
fi
echo "PASS: $(grep -c '^\$' "$XS_TMP/ref.txt") commands behave identically"
