#!/bin/bash
# Xen's own test program, test-xenstore (Debian xen-utils-4.17), against xpv-xenstored.
# Usage: xen_test_xenstore.sh [test-xenstore args, e.g. -r 30]. Exit 0 = pass, 77 = skip.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/xs_lib.sh"

prog=/usr/lib/xen-4.17/bin/test-xenstore
[ -x "$prog" ] || skip "$prog is absent (Debian package xen-utils-4.17)"

xs_start_xpv "$XS_TMP/xpv"
echo "test-xenstore $* against xpv-xenstored (pid $XS_PID)"
# -r N runs for N seconds; the rest takes well under a second. Bound it either way.
XENSTORED_PATH="$XS_TMP/xpv/socket" timeout 90 "$prog" "$@"
rc=$?
kill -0 "$XS_PID" 2>/dev/null || { cat "$XS_TMP/xpv/xpv-xenstored.log" >&2; die "xpv-xenstored died"; }
[ $rc -eq 0 ] || die "test-xenstore $* exited $rc"
echo PASS
