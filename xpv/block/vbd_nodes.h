// A vbd's nodes as xl's toolstack writes them before either end runs (libxl_disk.c's
// device_disk_add and libxl_device.c's libxl__device_generic_add): the backend's directory,
// owned by the backend domain and readable by the frontend, and the frontend's, owned by the
// frontend domain and readable by the backend; both in state 1 (Initialising). Used by the
// toolstack (`xpv create`) and the test fixture.
#pragma once

#include <string>

#include "xpv/base/result.h"
#include "xpv/xenbus/xenbus.h"
#include "xpv/xenstore/client.h"

namespace xpv::block {

struct VbdNodes {
  std::string params;        // the image or device xpv-blkback opens
  std::string dev = "xvda";  // the vdev as the config names it
  bool read_only = false;    // mode "r"
  bool discard = true;       // discard-enable
  bool cdrom = false;        // device-type
};

// Writes both directories in one transaction. The backend path's `type` is "qdisk": the
// userspace backend type xl hands to a device model (docs/block.md).
Status WriteVbdNodes(xenstore::Client& xs, const xenbus::DeviceId& id, const VbdNodes& vbd);

}  // namespace xpv::block
