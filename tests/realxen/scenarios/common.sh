# Helpers for scenarios (sourced; run in dom0 with cwd = the payload folder).
note() { local u; read -r u _ < /proc/uptime; echo "=== [dom0 ${u}s] [${SCENARIO:-?}] $*"; }
check() {  # check WHAT CMD...: one PASS/FAIL line per step; a failure is remembered in $failed
  local what=$1; shift
  if "$@"; then echo "    ok   $what"; else echo "    FAIL $what"; failed=1; fi
}
failed=0

# domu_cfg NAME [xl.cfg lines...]: a PV domU booting the harness's kernel and initramfs.
# $DOMU_EXTRA adds to its kernel command line (guest/domu-init's modes), $DOMU_MEMORY sets MiB,
# $DOMU_VCPUS the vCPUs (1).
domu_cfg() {
  local name=$1; shift
  { echo "name=\"$name\""; echo 'type="pv"'; echo "memory=${DOMU_MEMORY:-128}"; echo "vcpus=${DOMU_VCPUS:-1}"
    echo "kernel=\"$XPV_DOMU_KERNEL\""; echo "ramdisk=\"$XPV_DOMU_INITRD\""
    echo "extra=\"console=hvc0${DOMU_EXTRA:+ $DOMU_EXTRA}\""; echo 'on_poweroff="destroy"'; echo 'on_crash="destroy"'
    local l; for l in "$@"; do echo "$l"; done; } > /run/$name.cfg
  echo /run/$name.cfg
}

# wait_for SECONDS CMD...: polls CMD once a second.
wait_for() {
  local t=$1 i; shift
  for ((i = 0; i < t; i++)); do "$@" && return 0; sleep 1; done
  return 1
}

console_has() { grep -qF -- "$2" /var/log/xen/console/guest-$1.log 2>/dev/null; }
xs_is() { [ "$(xenstore-read "$1" 2>/dev/null)" = "$2" ]; }

# xl_traced OUTFILE ARGS...: `xl -vvv ARGS`, each line of its log timestamped (bash builtins only:
# a fork costs ~0.1 s in dom0 under emulation) into OUTFILE; returns xl's status.
xl_traced() {
  local out=$1 line; shift
  xl -vvv "$@" 2>&1 | while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done > "$out"
  return "${PIPESTATUS[0]}"
}
