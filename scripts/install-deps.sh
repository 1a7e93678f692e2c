#!/usr/bin/env bash
# Installs every build and test dependency of xpv from Debian 12's packages, by name.
# Idempotent and quick: when everything is present it only runs dpkg-query.
set -euo pipefail

packages=(
  # build
  build-essential cmake g++ make pkg-config ninja-build
  libfmt-dev libspdlog-dev libcli11-dev liburing-dev libseccomp-dev
  libxen-dev libxenstore4
  # tests and benchmarks
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev       # libFuzzer and sanitizer runtimes
  python3
  fio gnuplot-nox                # the block benchmark: its fio baseline and its plot
  # interop peers: Debian's xenstore-utils and Xen 4.17's own daemons and test-xenstore
  xenstore-utils xen-utils-4.17
  # the real-Xen harness (make realxen): QEMU, a Debian root fs, initramfs tools
  qemu-system-x86 debootstrap cpio
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
sudo=()
if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
