#!/bin/bash
# Boots Xen 4.17 with a Debian PV dom0 under QEMU (software emulation, no KVM), with the project's
# binaries copied in, runs scenarios in dom0 and prints one PASS/FAIL line per scenario.
# Exit status: 0 all passed, 1 some failed, 124 timeout, 125 the machine stopped without a result.
#   run.sh [--bin DIR] [--store xpv|debian] [--scenario NAME]... [--timeout S] [--out DIR] [-v]
#     --bin DIR        the project's binaries (default: build/bin); xpv-xenstored is required
#     --store          xpv: xpv-xenstored --platform xen is dom0's only store (default);
#                      debian: Debian's C xenstored (the reference)
#     --store-env ENV  environment for xpv-xenstored, e.g. 'XPV_XENSTORED_LOOP=epoll'
#     --scenario NAME  a script of scenarios/ (repeatable; default: all of them)
#     --timeout S      bound on the whole boot (default 1200)
#     --scenario-timeout S  bound on each scenario (default 900)
#     --out DIR        where dom0's logs come back (default WORKDIR/runs/<id>/out)
#     -v               show the hypervisor's and kernels' console lines too
#   env: WORKDIR (as setup.sh), XPV_QEMU_CPU (qemu64,+svm), XPV_QEMU_SMP (2), XPV_QEMU_MEM (3072)
{
set -e
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
BIN=$HERE/../../build/bin; STORE=xpv; STORE_ENV=""; SCENARIOS=""; TIMEOUT=1200; SCENARIO_TIMEOUT=900; OUT=""; VERBOSE=""
while [ $# -gt 0 ]; do case "$1" in
  --bin) BIN=$2; shift 2;; --store) STORE=$2; shift 2;; --store-env) STORE_ENV=$2; shift 2;; --scenario) SCENARIOS="$SCENARIOS $2"; shift 2;;
  --timeout) TIMEOUT=$2; shift 2;; --scenario-timeout) SCENARIO_TIMEOUT=$2; shift 2;; --out) OUT=$2; shift 2;; -v) VERBOSE=1; shift;;
  -h|--help) sed -n '2,17p' "$0"; exit 0;; *) fail "unknown argument $1 (see --help)";; esac; done
case "$STORE" in xpv|debian) ;; *) fail "--store: xpv or debian";; esac
for f in xen.elf vmlinuz dom0-stage1.cpio.gz domu.cpio.gz dom0-root.img; do
  [ -f "$WORKDIR/$f" ] || fail "$WORKDIR/$f missing: run $HERE/setup.sh (same WORKDIR) first"; done
fresh initramfs "$(key_of "$HERE/guest/dom0-stage1" "$HERE/guest/domu-init" "$WORKDIR/stage1.mods" "$WORKDIR/domu.mods")" \
  || fail "guest/dom0-stage1 or guest/domu-init changed: re-run setup.sh (seconds)"
[ -n "$SCENARIOS" ] || SCENARIOS=$(cd "$HERE/scenarios" && for f in *; do [ -x "$f" ] && echo "$f"; done | tr '\n' ' ')
for s in $SCENARIOS; do [ -x "$HERE/scenarios/$s" ] || fail "no scenario $s in $HERE/scenarios"; done
[ -x "$BIN/xpv-xenstored" ] || fail "$BIN/xpv-xenstored missing: build first (or --bin DIR)"
BIN=$(cd "$BIN" && pwd)

# The run disk: harness, domU kernel, payload (binaries + the libraries dom0 lacks), out/.
RUN=$WORKDIR/runs/$(date +%Y%m%d-%H%M%S)-$$; OUT=${OUT:-$RUN/out}
S=$RUN/disk; mkdir -p "$S"/{harness,domu,payload/bin,payload/lib,out}
cp "$HERE/guest/dom0-init" "$S/harness/"
cp "$WORKDIR/vmlinuz" "$WORKDIR/domu.cpio.gz" "$S/domu/"
cp -a "$HERE/scenarios" "$S/payload/"
for b in "$BIN"/xpv-*; do
  case "$b" in *-bench) continue;; esac
  [ -x "$b" ] && [ -f "$b" ] || continue
  strip -o "$S/payload/bin/${b##*/}" "$b" 2>/dev/null || cp "$b" "$S/payload/bin/"   # scripts too
  { ldd "$b" 2>/dev/null || true; } | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | while read -r lib; do
    [ -e "$ROOTFS/lib/x86_64-linux-gnu/${lib##*/}" ] || [ -e "$ROOTFS/usr/lib/x86_64-linux-gnu/${lib##*/}" ] \
      || cp -L "$lib" "$S/payload/lib/"
  done
done
printf 'XPV_STORE=%q\nXPV_STORE_ENV=%q\nXPV_SCENARIOS=%q\nXPV_SCENARIO_TIMEOUT=%q\n' \
  "$STORE" "$STORE_ENV" "$SCENARIOS" "$SCENARIO_TIMEOUT" > "$S/run.conf"
mke2fs -q -t ext4 -L run -d "$S" "$RUN/run.img" "$(( $(du -sm "$S" | cut -f1) + 256 ))M"
rm -rf "$S"

say "run $RUN: store=$STORE scenarios:$SCENARIOS bin=$BIN timeout=${TIMEOUT}s"
XEN_ARGS="console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M dom0_max_vcpus=2 loglvl=all guest_loglvl=all"
DOM0_ARGS="console=hvc0 earlyprintk=xen"
: > "$RUN/console.raw"   # before tail follows it
T0=$SECONDS
# snapshot=on: writes to the root image go to a throw-away overlay (in TMPDIR).
TMPDIR=$RUN timeout -k 10 "$TIMEOUT" qemu-system-x86_64 -accel tcg,thread=multi \
  -cpu "${XPV_QEMU_CPU:-qemu64,+svm}" -smp "${XPV_QEMU_SMP:-2}" -m "${XPV_QEMU_MEM:-3072}" \
  -machine pc -nographic -no-reboot -nic none -serial mon:stdio \
  -drive file="$WORKDIR/dom0-root.img",format=raw,if=virtio,snapshot=on,cache=unsafe \
  -drive file="$RUN/run.img",format=raw,if=virtio,cache=unsafe \
  -kernel "$WORKDIR/xen.elf" -append "$XEN_ARGS" \
  -initrd "$WORKDIR/vmlinuz $DOM0_ARGS,$WORKDIR/dom0-stage1.cpio.gz" \
  < /dev/null > "$RUN/console.raw" 2>&1 &
QEMU=$!
trap 'kill $QEMU 2>/dev/null' INT TERM
# The console, timestamped from QEMU's start; only dom0's userspace lines unless -v.
tail --pid=$QEMU -n +1 -f "$RUN/console.raw" 2>/dev/null | while IFS= read -r line; do
  line=${line%$'\r'}; printf -v line '[%4ds] %s' $((SECONDS - T0)) "$line"
  printf '%s\n' "$line" >> "$RUN/console.log"
  case "${line#*] }" in "(XEN)"*|"["*) [ -z "$VERBOSE" ] || printf '%s\n' "$line";; *) printf '%s\n' "$line";; esac
done || true
set +e; wait $QEMU; QRC=$?; set -e; trap - INT TERM
SECS=$((SECONDS - T0))
# dom0's out/ (its logs, the store's log, domU consoles) back to the host.
e2fsck -fy -E journal_only "$RUN/run.img" >/dev/null 2>&1 || true
mkdir -p "$OUT"; debugfs -R "rdump /out $OUT" "$RUN/run.img" >/dev/null 2>&1 || true
if [ -d "$OUT/out" ]; then cp -a "$OUT/out/." "$OUT/" && rm -rf "$OUT/out"; fi
rm -f "$RUN/run.img"
ls -1dt "$WORKDIR"/runs/*/ 2>/dev/null | tail -n +6 | xargs -r rm -rf   # keep the last 5 runs

echo "---- realxen results (store=$STORE, ${SECS}s, console: $RUN/console.log, dom0 files: $OUT)"
RES=$(tr -d '\r' < "$RUN/console.raw" | grep -a -o 'XPV-REALXEN-DONE rc=[0-9]*' | tail -1 || true)
for s in $SCENARIOS; do
  if tr -d '\r' < "$RUN/console.raw" | grep -aq "^XPV-SCENARIO $s PASS"; then echo "PASS $s"
  elif tr -d '\r' < "$RUN/console.raw" | grep -aq "^XPV-SCENARIO $s FAIL"; then echo "FAIL $s"
  else echo "FAIL $s (did not finish)"; fi
done
if [ -n "$RES" ]; then
  RC=${RES##*=}; [ "$RC" = 0 ] || RC=1; exit $RC
elif [ "$QRC" = 124 ] || [ "$QRC" = 137 ]; then
  echo "TIMEOUT after ${TIMEOUT}s"; exit 124
else
  echo "the machine stopped (QEMU rc=$QRC) without a result; last lines:"; tail -15 "$RUN/console.log"; exit 125
fi
}
