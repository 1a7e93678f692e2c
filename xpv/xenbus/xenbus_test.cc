#include "xpv/xenbus/xenbus.h"

#include <gtest/gtest.h>

namespace xpv::xenbus {
namespace {

TEST(XenbusState, ParsesWhatPeersWrite) {
  EXPECT_EQ(ParseState("4"), State::kConnected);
  EXPECT_EQ(ParseState("1"), State::kInitialising);
  EXPECT_EQ(ParseState("8"), State::kReconfigured);
  EXPECT_EQ(FormatState(State::kInitWait), "2");
  EXPECT_STREQ(StateName(State::kClosing), "Closing");
}

TEST(XenbusState, JunkStateIsRejected) {
  for (const char* junk : {"", " 4", "4 ", "-1", "9", "4294967300", "0x4", "Connected", "4\n"})
    EXPECT_FALSE(ParseState(junk)) << "'" << junk << "'";
}

TEST(XenbusParseUint, BoundsAndJunk) {
  EXPECT_EQ(ParseUint("18446744073709551615"), UINT64_MAX);
  EXPECT_FALSE(ParseUint("18446744073709551616"));
  EXPECT_FALSE(ParseUint("12", 11));
  EXPECT_FALSE(ParseUint("+1"));
  EXPECT_EQ(ParseUint("0"), 0u);
}

TEST(XenbusPaths, CanonicalPaths) {
  DeviceId id{"vbd", DomId(1), DomId(7), 51712};
  EXPECT_EQ(id.BackendPath(), "/local/domain/1/backend/vbd/7/51712");
  EXPECT_EQ(id.FrontendPath(), "/local/domain/7/device/vbd/51712");
  EXPECT_EQ(BackendRoot(DomId(0), "vif"), "/local/domain/0/backend/vif");
}

TEST(XenbusPaths, DeviceFromWatchedPath) {
  auto d = DeviceFromBackendPath(DomId(1), "vbd", "/local/domain/1/backend/vbd/7/51712/state");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->frontend, DomId(7));
  EXPECT_EQ(d->devid, 51712u);
  EXPECT_TRUE(DeviceFromBackendPath(DomId(1), "vbd", "/local/domain/1/backend/vbd/7/51712"));
}

TEST(XenbusPaths, ForgedOrForeignPathsNameNoDevice) {
  for (const char* p : {"/local/domain/1/backend/vbd", "/local/domain/1/backend/vbd/7",
                        "/local/domain/2/backend/vbd/7/1", "/local/domain/1/backend/vif/7/1",
                        "/local/domain/1/backend/vbd/32752/1",  // DOMID_FIRST_RESERVED
                        "/local/domain/1/backend/vbd/-7/1", "/local/domain/1/backend/vbd/7/x",
                        "/local/domain/1/backend/vbd/7/99999999999"})
    EXPECT_FALSE(DeviceFromBackendPath(DomId(1), "vbd", p)) << p;
}

}  // namespace
}  // namespace xpv::xenbus
