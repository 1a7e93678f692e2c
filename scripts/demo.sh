#!/usr/bin/env bash
# The main job: `xpv demo` — a simulated Xen host, a driver domain running xpv-blkback on a disk
# image, and guests whose blkfront writes, reads back and verifies data and measures the disk,
# in both grant modes; then everything is torn down. See README.md.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
exec "$top/build/bin/xpv" demo "$@"
