# Shared by the shell tests in this folder (sourced). Exit 77 = SKIP for CTest (SKIP_RETURN_CODE).
#   XPV_XENSTORED  the daemon binary (set by CTest)
#   XS_PEER_DIR    shared/peers/xenstored, XSPEER_BUILD: where its shim is built

skip() { echo "SKIP: $*"; exit 77; }
die() { echo "FAIL: $*" >&2; exit 1; }

XS_TMP=$(mktemp -d "${TMPDIR:-/tmp}/xpv-xs-sh-XXXXXX")
XS_PIDS=()
xs_cleanup() {
  local p
  for p in "${XS_PIDS[@]}"; do
    kill -9 "$p" 2>/dev/null
    wait "$p" 2>/dev/null  # our children: reap quietly (no "Killed" line)
  done
  for p in "${XS_PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
  done
  rm -rf "$XS_TMP"
}
trap xs_cleanup EXIT

# Waits (bounded, 10 s) until a Unix socket exists.
xs_wait_socket() {
  for _ in $(seq 200); do [ -S "$1" ] && return 0; sleep 0.05; done
  return 1
}

# xs_start_xpv DIR: starts xpv-xenstored on DIR/socket; sets XS_PID.
xs_start_xpv() {
  local dir=$1; shift
  mkdir -p "$dir"
  [ -x "${XPV_XENSTORED:-}" ] || die "xpv-xenstored not built: no executable at '${XPV_XENSTORED:-}'"
  "$XPV_XENSTORED" --socket "$dir/socket" "$@" </dev/null >"$dir/xpv-xenstored.log" 2>&1 &
  XS_PID=$!
  XS_PIDS+=("$XS_PID")
  xs_wait_socket "$dir/socket" || { cat "$dir/xpv-xenstored.log" >&2; die "xpv-xenstored did not start"; }
  sleep 0.05  # the socket file appears at bind(); give listen() a moment
}

# Why Xen's C daemon cannot run here (empty: it can).
xs_xen_unavailable() {
  [ -x /usr/lib/xen-4.17/bin/xenstored ] || { echo "Xen's xenstored is absent (Debian xen-utils-4.17)"; return; }
  [ -x "${XS_PEER_DIR:-}/start-cxenstored.sh" ] || { echo "../shared/peers/xenstored is absent"; return; }
  [ -f /usr/include/xen/io/xs_wire.h ] || { echo "libxen-dev is absent (needed for the shim)"; return; }
  mkdir -p "$XSPEER_BUILD"
  flock "$XSPEER_BUILD/.lock" timeout 120 make -s -f "$XS_PEER_DIR/Makefile" OUT="$XSPEER_BUILD" \
    "$XSPEER_BUILD/xsshim.so" >&2 || { echo "could not build the xsshim.so shim"; return; }
}

# xs_start_xen DIR: starts Xen's C xenstored on DIR/socket; sets XS_PID.
xs_start_xen() {
  XS_PID=$(XSPEER_TIMEOUT=600 timeout 60 "$XS_PEER_DIR/start-cxenstored.sh" "$1") ||
    die "Xen's xenstored did not start"
  XS_PIDS+=("$XS_PID")
}
