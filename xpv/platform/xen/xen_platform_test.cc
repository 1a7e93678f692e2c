// What can be checked of the Xen platform on a host without Xen: that it refuses cleanly.
// The rest runs in the real-Xen harness (tests/realxen).
#include "xpv/platform/xen/xen_platform.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

namespace xpv::platform::xen {
namespace {

TEST(ConnectXen, FailsCleanlyWithoutXen) {
  if (::access("/dev/xen/evtchn", F_OK) == 0) GTEST_SKIP() << "this host runs on Xen";
  auto p = ConnectXen();
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, ENOENT);
  EXPECT_EQ(std::string(p.error().message), "not running on Xen: /dev/xen/evtchn missing");
}

}  // namespace
}  // namespace xpv::platform::xen
