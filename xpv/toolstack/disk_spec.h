// Disk specifications: one entry of xl.cfg's `disk = [ ... ]`, in the syntax of Xen's
// docs/misc/xl-disk-configuration.txt, and the virtual device names of docs/misc/vbd-interface.txt.
//
//   "/srv/guest.img,raw,xvda,rw"                        positional: target, format, vdev, access
//   "format=raw, vdev=xvda, access=rw, target=/srv/a,b" keywords; target= takes the rest
//   "phy:/dev/vg/guest,xvda,w"                          deprecated prefix form, still accepted
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "xpv/toolstack/config_result.h"

namespace xpv::toolstack {

// A guest's virtual block device: its name in the config and the number the frontend finds in
// xenstore (device/vbd/<number>, the backend's "virtual-device").
struct VirtualDevice {
  // vbd-interface.txt's nominal disk types; kNumber is a raw xenstore number given as the vdev.
  enum class Kind { kXen, kScsi, kIde, kNumber };

  std::string name;  // as written: "xvda", "d0p1", "hdc", "51712"
  Kind kind = Kind::kXen;
  uint32_t disk = 0;       // 0 for "a"; unknown (0) for kNumber
  uint32_t partition = 0;  // 0 is the whole disk; unknown (0) for kNumber
  uint32_t number = 0;     // the xenstore encoding

  friend bool operator==(const VirtualDevice&, const VirtualDevice&) = default;
};

// Parses a vdev: xvd<letters>[<partition>], d<disk>[p<partition>], sd<letters>[<partition>],
// hd<letters>[<partition>], or a number (decimal, 0x hex or 0 octal) written to xenstore as is.
// Letters count a, b, ..., z, aa, ab, ... from 0; partitions have no leading zero. Encodings
// (vbd-interface.txt):
//   xvd, disk <= 15 and partition <= 15:   202 << 8 | disk << 4 | partition
//   xvd, disk < 2^20 and partition <= 255:  1 << 28 | disk << 8 | partition
//   sd, disk <= 15 and partition <= 15:       8 << 8 | disk << 4 | partition
//   hd, disk <= 1, partition <= 63:           3 << 8 | disk << 6 | partition
//   hd, disk 2..3, partition <= 63:          22 << 8 | (disk - 2) << 6 | partition
ConfigResult<VirtualDevice> ParseVirtualDevice(std::string_view vdev);

enum class DiskFormat { kRaw, kQcow, kQcow2, kVhd, kQed, kEmpty };
enum class DiskAccess { kReadWrite, kReadOnly };
enum class DiskDevType { kDisk, kCdrom };
// kAuto: not given; the toolstack picks (xl's "automatically determine").
enum class DiskBackendType { kAuto, kPhy, kTap, kQdisk, kStandalone, kOther };
// The guest's view: a Xen vbd (blkif) or virtio-blk over grants.
enum class DiskSpecification { kXen, kVirtio };
enum class DiskDiscard { kEnabled, kDisabled };
enum class DiskDirectIo { kDefault, kSafe };

struct DiskSpec {
  // The image or device path; empty only for an empty cdrom drive. Kept as written (libxl
  // prepends /dev to relative phy targets; that is the backend's business, not the parser's).
  std::string target;
  DiskFormat format = DiskFormat::kRaw;
  VirtualDevice vdev;
  DiskAccess access = DiskAccess::kReadWrite;  // default ro for a cdrom
  DiskDevType devtype = DiskDevType::kDisk;
  DiskBackendType backendtype = DiskBackendType::kAuto;
  DiskSpecification specification = DiskSpecification::kXen;
  std::string backend;  // backend domain, name or id; empty: domain 0
  std::string script;   // hotplug script; "nbd:" style prefixes become "block-nbd"
  DiskDiscard discard = DiskDiscard::kEnabled;
  DiskDirectIo direct_io = DiskDirectIo::kDefault;

  friend bool operator==(const DiskSpec&, const DiskSpec&) = default;
};

// Parses one disk spec. Each parameter may be given once, positionally or by keyword; an empty
// value means the default. Whitespace around parameters is ignored (but target= keeps everything
// after its "=", commas included, and must come last). Messages say what is wrong without a
// location: "unknown access \"rx\" (use ro or rw)"; ParseDomainConfig adds file, line and index.
ConfigResult<DiskSpec> ParseDiskSpec(std::string_view spec);

// The canonical keyword form, target last: "format=raw, vdev=xvda, access=rw, target=/srv/a.img".
// ParseDiskSpec(ToString(d)) == d for every d that ParseDiskSpec returned.
std::string ToString(const DiskSpec& disk);

std::string_view ToString(DiskFormat format);
std::string_view ToString(DiskBackendType type);

}  // namespace xpv::toolstack
