#include "xpv/block/vbd_nodes.h"

#include <utility>

namespace xpv::block {

namespace {

std::string Z(std::string_view s) {
  return std::string(s) + '\0';
}

// XS_SET_PERMS: `owner` owns the node (others: none), `reader` may read it.
Status OwnedBy(xenstore::Client& xs, const std::string& path, DomId owner, DomId reader,
               uint32_t tx) {
  auto r = xs.Call(
      xenstore::MsgType::kSetPerms,
      Z(path) + Z("n" + std::to_string(owner.value)) + Z("r" + std::to_string(reader.value)), tx);
  if (!r) return r.error();
  return Ok();
}

}  // namespace

Status WriteVbdNodes(xenstore::Client& xs, const xenbus::DeviceId& id, const VbdNodes& vbd) {
  const std::string be = id.BackendPath(), fe = id.FrontendPath();
  const std::pair<const char*, std::string> backend_nodes[] = {
      {"frontend", fe},
      {"frontend-id", std::to_string(id.frontend.value)},
      {"online", "1"},
      {"removable", vbd.cdrom ? "1" : "0"},
      {"bootable", "1"},
      {"state", "1"},
      {"dev", vbd.dev},
      {"type", "qdisk"},
      {"mode", vbd.read_only ? "r" : "w"},
      {"device-type", vbd.cdrom ? "cdrom" : "disk"},
      {"params", vbd.params},
      {"discard-enable", vbd.discard ? "1" : "0"},
  };
  const std::pair<const char*, std::string> frontend_nodes[] = {
      {"backend", be},
      {"backend-id", std::to_string(id.backend.value)},
      {"state", "1"},
      {"virtual-device", std::to_string(id.devid)},
      {"device-type", vbd.cdrom ? "cdrom" : "disk"},
  };
  return xs.InTransaction([&](uint32_t tx) -> Status {
    XPV_TRY(xs.Mkdir(be, tx));
    XPV_TRY(OwnedBy(xs, be, id.backend, id.frontend, tx));
    for (const auto& [node, value] : backend_nodes) XPV_TRY(xs.Write(be + "/" + node, value, tx));
    XPV_TRY(xs.Mkdir(fe, tx));
    XPV_TRY(OwnedBy(xs, fe, id.frontend, id.backend, tx));
    for (const auto& [node, value] : frontend_nodes) XPV_TRY(xs.Write(fe + "/" + node, value, tx));
    return Ok();
  });
}

}  // namespace xpv::block
