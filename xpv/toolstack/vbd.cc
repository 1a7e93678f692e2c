#include "xpv/toolstack/vbd.h"

#include <string>
#include <utility>

#include "xpv/block/vbd_nodes.h"

namespace xpv::toolstack {

Result<xenbus::DeviceId> AddVbd(xenstore::Client& xs, DomId backend, DomId frontend,
                                const DiskSpec& disk) {
  if (disk.format != DiskFormat::kRaw) return Err(EINVAL, "xpv-blkback serves raw images only");
  if (disk.target.empty()) return Err(EINVAL, "an empty drive has nothing to serve");
  if (disk.specification != DiskSpecification::kXen)
    return Err(EINVAL, "virtio disks are not served by xpv-blkback");
  if (disk.vdev.number == 0) return Err(EINVAL, "vdev has no xenstore number");
  xenbus::DeviceId id{"vbd", backend, frontend, disk.vdev.number};
  XPV_TRY(block::WriteVbdNodes(xs, id,
                               {.params = disk.target,
                                .dev = disk.vdev.name,
                                .read_only = disk.access == DiskAccess::kReadOnly,
                                .discard = disk.discard == DiskDiscard::kEnabled,
                                .cdrom = disk.devtype == DiskDevType::kCdrom}));
  return id;
}

void RemoveVbds(xenstore::Client& xs, DomId frontend) {
  const std::string dir = "/local/domain/" + std::to_string(frontend.value) + "/device/vbd";
  auto devids = xs.Directory(dir);
  if (!devids) return;
  for (const std::string& devid : *devids) {
    auto be = xs.Read(dir + "/" + devid + "/backend");
    auto be_id = xs.Read(dir + "/" + devid + "/backend-id");
    auto backend = be_id ? xenbus::ParseUint(*be_id, kDomIdFirstReserved - 1) : std::nullopt;
    auto number = xenbus::ParseUint(devid, UINT32_MAX);
    // Only the canonical backend path of this very device: the frontend domain owns its
    // directory and could point `backend` anywhere.
    if (be && backend && number &&
        *be == xenbus::DeviceId{"vbd", DomId(static_cast<uint32_t>(*backend)), frontend,
                                static_cast<uint32_t>(*number)}
                   .BackendPath())
      (void)xs.Rm(*be);
    (void)xs.Rm(dir + "/" + devid);
  }
}

}  // namespace xpv::toolstack
