// ConnectXen() in a build without libxen-dev (see CMakeLists.txt).
#include "xpv/platform/xen/xen_platform.h"

namespace xpv::platform::xen {

Result<std::unique_ptr<XenPlatform>> ConnectXen(const XenOptions&) {
  return Err(ENOSYS, "built without libxen-dev: no Xen platform");
}

}  // namespace xpv::platform::xen
