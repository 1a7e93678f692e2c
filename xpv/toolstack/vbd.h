// Virtual block devices in the store, as xl's libxl adds and removes them
// (tools/libs/light/libxl_disk.c, libxl_device.c): the backend's directory, owned by the backend
// domain and readable by the frontend, and the frontend's, owned by the frontend domain and
// readable by the backend. Both start in state 1 (Initialising); the backend process does the
// rest (xenbus/).
#pragma once

#include <vector>

#include "xpv/base/result.h"
#include "xpv/toolstack/disk_spec.h"
#include "xpv/xenbus/xenbus.h"
#include "xpv/xenstore/client.h"

namespace xpv::toolstack {

// Writes one vbd's nodes in one transaction. `backend` serves it (DiskSpec::backend resolved by
// the caller), `frontend` uses it. EINVAL for disk types xpv-blkback does not serve (formats
// other than raw, empty cdroms, virtio).
Result<xenbus::DeviceId> AddVbd(xenstore::Client& xs, DomId backend, DomId frontend,
                                const DiskSpec& disk);

// Removes a domain's vbds: every backend directory its frontend directories point at, and the
// frontend directories (xl destroy's device removal, without waiting for the backend).
void RemoveVbds(xenstore::Client& xs, DomId frontend);

}  // namespace xpv::toolstack
