#!/bin/bash
# Builds, once, what run.sh boots: Debian's Xen 4.17 hypervisor and 6.1 kernel, a dom0 root image
# (debootstrap + Xen toolstack), and the initramfs images of dom0's first stage and of the domUs.
# Cached under WORKDIR (default $XDG_CACHE_HOME/xpv-realxen, else /var/tmp/xpv-realxen): each step
# reruns only when its inputs changed. Needs root and a Debian mirror (XPV_MIRROR, else the host's
# apt sources).
#   env: WORKDIR, XPV_MIRROR, XPV_SECURITY_MIRROR, XPV_EXTRA_PKGS, XPV_EXTRA_MODULES
{ # read whole before running: safe to edit while it runs
set -e
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
[ "$(id -u)" = 0 ] || fail "setup.sh needs root (debootstrap, chroot)"
T0=$SECONDS

# Host tools. The list is printed for scripts/install-deps.sh; we install what is missing.
missing=""
for t in qemu-system-x86_64:qemu-system-x86 debootstrap:debootstrap mke2fs:e2fsprogs \
         debugfs:e2fsprogs cpio:cpio dpkg-deb:dpkg; do
  command -v "${t%%:*}" >/dev/null || missing="$missing ${t#*:}"
done
if [ -n "$missing" ]; then
  say "installing host packages:$missing"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null \
    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null; }
fi
find_mirrors
say "WORKDIR=$WORKDIR mirror=$MIRROR security=${SECURITY_MIRROR:-none}"

# Leftover mounts of an interrupted chroot step.
awk -v r="$ROOTFS/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l

# 1. dom0 root: debootstrap minbase with the Xen toolstack; security updates, so the toolstack
#    and the hypervisor below come from the same apt lists (same Xen version).
PKGS="xen-utils-$XPV_XENVER,xen-utils-common,xenstore-utils,qemu-system-xen,busybox,kmod,iproute2,bridge-utils,procps,util-linux,udev,e2fsprogs"
ROOT_KEY=$(key_str "$XPV_SUITE $PKGS ${XPV_EXTRA_PKGS:-} $MIRROR ${SECURITY_MIRROR:-}")
if ! fresh rootfs "$ROOT_KEY" || [ ! -x "$ROOTFS/usr/sbin/xl" ]; then
  say "debootstrap $XPV_SUITE with Xen $XPV_XENVER's toolstack (a few minutes)"
  rm -rf --one-file-system "$ROOTFS" "$WORKDIR/stamps"
  debootstrap --variant=minbase --include="$PKGS" "$XPV_SUITE" "$ROOTFS" "$MIRROR" \
    > "$WORKDIR/debootstrap.log" 2>&1 || fail "debootstrap failed: $WORKDIR/debootstrap.log"
  { echo "deb $MIRROR $XPV_SUITE main"; echo "deb $MIRROR $XPV_SUITE-updates main"
    [ -z "${SECURITY_MIRROR:-}" ] || echo "deb $SECURITY_MIRROR $XPV_SUITE-security main"; } > "$ROOTFS/etc/apt/sources.list"
  cp -L /etc/resolv.conf "$ROOTFS/etc/resolv.conf" 2>/dev/null || true
  printf '#!/bin/sh\nexit 101\n' > "$ROOTFS/usr/sbin/policy-rc.d"; chmod 755 "$ROOTFS/usr/sbin/policy-rc.d"
  say "security updates${XPV_EXTRA_PKGS:+, extra packages: $XPV_EXTRA_PKGS}"
  { chroot "$ROOTFS" apt-get update -q
    DEBIAN_FRONTEND=noninteractive chroot "$ROOTFS" apt-get -y -q dist-upgrade
    [ -z "${XPV_EXTRA_PKGS:-}" ] || DEBIAN_FRONTEND=noninteractive chroot "$ROOTFS" apt-get -y -q install --no-install-recommends $XPV_EXTRA_PKGS
    # The hypervisor, the kernel (dom0's and the domUs') and a static busybox for the initramfs.
    kpkg=$(chroot "$ROOTFS" apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    mkdir -p "$ROOTFS/tmp/debs"
    chroot "$ROOTFS" sh -c "cd /tmp/debs && apt-get download -q xen-hypervisor-$XPV_XENVER-amd64 $kpkg busybox-static"
  } > "$WORKDIR/apt.log" 2>&1 || fail "apt in the dom0 root failed: $WORKDIR/apt.log"
  rm -rf "$WORKDIR/debs"; mv "$ROOTFS/tmp/debs" "$WORKDIR/debs"
  chroot "$ROOTFS" apt-get clean
  stamp rootfs "$ROOT_KEY"
fi

# 2. xen.elf (QEMU's multiboot loader wants the uncompressed ELF), vmlinuz, modules, busybox.
DEB_KEY=$(ls "$WORKDIR/debs" | key_str "$(cat)")
if ! fresh extract "$DEB_KEY" || [ ! -f "$WORKDIR/xen.elf" ]; then
  say "extracting the hypervisor, kernel and busybox"
  rm -rf "$WORKDIR/extract"; mkdir -p "$WORKDIR/extract"
  for p in xen kernel busybox; do mkdir -p "$WORKDIR/extract/$p"; done
  dpkg-deb -x "$WORKDIR"/debs/xen-hypervisor-*.deb "$WORKDIR/extract/xen"
  dpkg-deb -x "$WORKDIR"/debs/linux-image-*.deb "$WORKDIR/extract/kernel"
  dpkg-deb -x "$WORKDIR"/debs/busybox-static_*.deb "$WORKDIR/extract/busybox"
  zcat "$WORKDIR"/extract/xen/boot/xen-$XPV_XENVER-amd64.gz > "$WORKDIR/xen.elf"
  cp "$WORKDIR"/extract/kernel/boot/vmlinuz-* "$WORKDIR/vmlinuz"
  stamp extract "$DEB_KEY"
fi
KVER=$(ls "$WORKDIR/extract/kernel/lib/modules")
KMODS=$WORKDIR/extract/kernel/lib/modules/$KVER

# 3. Kernel modules: only those the harness loads, with their dependencies, in load order
#    (the full tree is ~400 MB). Resolved by the rootfs' own modprobe.
DOM0_MODS="xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs xen-blkback xen-netback loop bridge tun ${XPV_EXTRA_MODULES:-}"
MOD_KEY=$(key_str "$DEB_KEY $DOM0_MODS")
load_order() {
  local tree=$ROOTFS/tmp/kmods
  rm -rf "$tree"; mkdir -p "$tree/lib/modules"; cp -a "$KMODS" "$tree/lib/modules/"
  chroot "$ROOTFS" depmod -b /tmp/kmods "$KVER"
  for m in "$@"; do chroot "$ROOTFS" modprobe -d /tmp/kmods -S "$KVER" --show-depends "$m" || fail "no module $m"; done \
    | awk -v p="/tmp/kmods/lib/modules/$KVER/" '$1 == "insmod" {sub(p, "", $2); if (!seen[$2]++) print $2}'
  rm -rf "$tree"
}
if ! fresh modules "$MOD_KEY"; then
  say "kernel module subset for dom0, dom0's first stage and the domUs"
  load_order $DOM0_MODS > "$WORKDIR/dom0.mods"
  load_order virtio_pci virtio_blk ext4 > "$WORKDIR/stage1.mods"
  load_order xen-blkfront xen-netfront > "$WORKDIR/domu.mods"
  rm -rf "$ROOTFS/lib/modules"; mkdir -p "$ROOTFS/lib/modules/$KVER"
  cp "$KMODS"/modules.order "$KMODS"/modules.builtin* "$ROOTFS/lib/modules/$KVER/"
  while read -r m; do install -D -m 644 "$KMODS/$m" "$ROOTFS/lib/modules/$KVER/$m"; done < "$WORKDIR/dom0.mods"
  chroot "$ROOTFS" depmod "$KVER"
  stamp modules "$MOD_KEY"
fi

# 4. initramfs images: dom0's first stage (mounts the root image) and the domUs' whole system.
CPIO_KEY=$(key_of "$HERE/guest/dom0-stage1" "$HERE/guest/domu-init" "$WORKDIR/stage1.mods" "$WORKDIR/domu.mods")
if ! fresh initramfs "$CPIO_KEY" || [ ! -f "$WORKDIR/domu.cpio.gz" ]; then
  say "initramfs images"
  initramfs "$WORKDIR/dom0-stage1.cpio.gz" "$HERE/guest/dom0-stage1" "$WORKDIR/stage1.mods"
  initramfs "$WORKDIR/domu.cpio.gz" "$HERE/guest/domu-init" "$WORKDIR/domu.mods"
  stamp initramfs "$CPIO_KEY"
fi

# 5. The root image, booted read-only (QEMU snapshot=on), so every run starts from the same state.
IMG_KEY=$(key_str "$ROOT_KEY $MOD_KEY")
if ! fresh image "$IMG_KEY" || [ ! -f "$WORKDIR/dom0-root.img" ]; then
  say "dom0 root image"
  rm -rf "$ROOTFS"/usr/share/{doc,man,info,locale}/* "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin
  echo dom0 > "$ROOTFS/etc/hostname"
  # The harness gives dom0 a fixed allocation: no ballooning at domU creation.
  sed -i 's/^#\?autoballoon=.*/autoballoon="off"/' "$ROOTFS/etc/xen/xl.conf"
  mkdir -p "$ROOTFS/mnt/run"
  rm -f "$WORKDIR/dom0-root.img"
  mke2fs -q -t ext4 -L dom0root -d "$ROOTFS" "$WORKDIR/dom0-root.img" "$(( $(du -sm "$ROOTFS" | cut -f1) + 1024 ))M"
  stamp image "$IMG_KEY"
fi
say "ready in $((SECONDS - T0))s: kernel $KVER, $(dpkg-deb -f "$WORKDIR"/debs/xen-hypervisor-*.deb Version | sed 's/^/xen /')"
exit 0
}
