# Helpers shared by setup.sh and run.sh (sourced by bash). Everything goes under $WORKDIR; nothing
# is written into the source tree.
set -o pipefail
XPV_SUITE=${XPV_SUITE:-bookworm}  # the Debian release whose Xen (4.17) the harness boots
XPV_XENVER=4.17
if [ -z "${WORKDIR:-}" ]; then
  if [ -n "${XDG_CACHE_HOME:-}" ]; then WORKDIR=$XDG_CACHE_HOME/xpv-realxen; else WORKDIR=/var/tmp/xpv-realxen; fi
fi
# QEMU's -initrd list is comma-separated and the kernel command line is space-separated.
case "$WORKDIR" in *[\ ,]*) echo "realxen: WORKDIR must not contain spaces or commas: $WORKDIR" >&2; exit 2;; esac
mkdir -p "$WORKDIR" && WORKDIR=$(cd "$WORKDIR" && pwd)
ROOTFS=$WORKDIR/rootfs

say() { printf '[realxen %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
fail() { printf 'realxen: ERROR: %s\n' "$*" >&2; exit 1; }

# A step is redone only when the key of its inputs changed (or its outputs are missing).
fresh() { [ -f "$WORKDIR/stamps/$1" ] && [ "$(cat "$WORKDIR/stamps/$1")" = "$2" ]; }
stamp() { mkdir -p "$WORKDIR/stamps" && printf '%s\n' "$2" > "$WORKDIR/stamps/$1"; }
key_of() { sha256sum "$@" | sha256sum | cut -c1-16; }
key_str() { printf '%s' "$*" | sha256sum | cut -c1-16; }

# Debian archive and security URLs: $XPV_MIRROR / $XPV_SECURITY_MIRROR, else the host's apt
# sources (deb822 *.sources "URIs:" or one-line "deb URL SUITE" entries).
find_mirrors() {
  local uris
  uris=$( { awk 'tolower($1)=="uris:" {for (i = 2; i <= NF; i++) print $i}' /etc/apt/sources.list.d/*.sources 2>/dev/null
            awk '$1=="deb" {for (i = 2; i <= NF; i++) if ($i ~ /^(https?|ftp|file):/) {print $i; break}}' \
              /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null; } | sed 's:/*$::' || true)
  MIRROR=${XPV_MIRROR:-$(printf '%s\n' "$uris" | awk '/debian/ && !/security/ {print; exit}')}
  SECURITY_MIRROR=${XPV_SECURITY_MIRROR:-$(printf '%s\n' "$uris" | awk '/debian-security/ {print; exit}')}
  [ -n "$MIRROR" ] || fail "no Debian mirror in the host's apt sources: set XPV_MIRROR=http://deb.debian.org/debian"
}

# initramfs OUT INIT MODLIST: a static busybox, the init script and the listed modules (in order).
initramfs() {
  local out=$1 init=$2 mods=$3 d m n=0
  d=$(mktemp -d "$WORKDIR/.cpio.XXXXXX")
  mkdir -p "$d"/{bin,dev,proc,sys,tmp,newroot,mods}
  cp "$WORKDIR/extract/busybox/bin/busybox" "$d/bin/"
  for m in $("$d/bin/busybox" --list); do [ "$m" = busybox ] || ln -s busybox "$d/bin/$m"; done
  ln -s bin "$d/sbin"
  while read -r m; do [ -n "$m" ] || continue; n=$((n + 1))
    cp "$KMODS/$m" "$d/mods/$(printf %02d "$n")-${m##*/}"; done < "$mods"
  install -m 755 "$init" "$d/init"
  (cd "$d" && find . | cpio -o -H newc --quiet | gzip -1) > "$out.new" && mv "$out.new" "$out"
  rm -rf "$d"
}
