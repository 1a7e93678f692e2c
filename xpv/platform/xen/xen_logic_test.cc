#include "xpv/platform/xen/xen_logic.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace xpv::platform::xen {
namespace {

TEST(GrantStatusFromErrno, MapsGntdevErrors) {
  EXPECT_EQ(GrantStatusFromErrno(0), GrantStatus::kOkay);
  // gntdev's map_grant_pages turns any failed op into EINVAL.
  EXPECT_EQ(GrantStatusFromErrno(EINVAL), GrantStatus::kBadGntref);
  EXPECT_EQ(GrantStatusFromErrno(ESRCH), GrantStatus::kBadDomain);
  EXPECT_EQ(GrantStatusFromErrno(EPERM), GrantStatus::kPermissionDenied);
  EXPECT_EQ(GrantStatusFromErrno(EAGAIN), GrantStatus::kEagain);
  EXPECT_EQ(GrantStatusFromErrno(ENOMEM), GrantStatus::kNoDeviceSpace);
  EXPECT_EQ(GrantStatusFromErrno(EIO), GrantStatus::kGeneralError);
}

std::vector<DomId> Ids(std::initializer_list<uint32_t> ids) {
  std::vector<DomId> v;
  for (uint32_t i : ids) v.emplace_back(i);
  return v;
}

TEST(DeathTracker, DyingThenGoneIsReportedOnce) {
  DeathTracker t;
  std::vector<DomainState> s = {{DomId(0)}, {DomId(1)}, {DomId(2)}};
  t.Reset(s);
  EXPECT_TRUE(t.Update(s).empty());
  s[1].dying = true;  // xl destroy: a zombie while the store still maps its ring
  EXPECT_EQ(t.Update(s), Ids({1}));
  EXPECT_TRUE(t.Update(s).empty());  // still a zombie: not reported again
  s.erase(s.begin() + 1);            // released
  EXPECT_TRUE(t.Update(s).empty());
}

TEST(DeathTracker, VanishedBetweenScans) {
  DeathTracker t;
  t.Reset(std::vector<DomainState>{{DomId(0)}, {DomId(3)}});
  EXPECT_EQ(t.Update(std::vector<DomainState>{{DomId(0)}}), Ids({3}));
}

TEST(DeathTracker, BornAndDyingBetweenScans) {
  DeathTracker t;
  t.Reset(std::vector<DomainState>{{DomId(0)}});
  EXPECT_EQ(t.Update(std::vector<DomainState>{{DomId(0)}, {DomId(5), true}}), Ids({5}));
}

TEST(DeathTracker, ShutdownIsNotDeath) {
  DeathTracker t;
  t.Reset(std::vector<DomainState>{{DomId(0)}, {DomId(4)}});
  EXPECT_TRUE(t.Update(std::vector<DomainState>{{DomId(0)}, {DomId(4), false, true}}).empty());
}

TEST(DeathTracker, ShutdownIsReportedOnceUntilItRunsAgain) {
  DeathTracker t;
  t.Reset(std::vector<DomainState>{{DomId(0)}, {DomId(4)}, {DomId(6), false, true}});
  std::vector<DomainState> s = {{DomId(0)}, {DomId(4), false, true}, {DomId(6), false, true}};
  EXPECT_TRUE(t.Update(s).empty());
  EXPECT_EQ(t.TakeShutdown(), Ids({4}));  // 6 was shut down before we started
  EXPECT_TRUE(t.Update(s).empty());
  EXPECT_TRUE(t.TakeShutdown().empty());
  s[1].shutdown = false;  // resumed (xl restore, XS_RESUME)
  (void)t.Update(s);
  s[1].shutdown = true;
  (void)t.Update(s);
  EXPECT_EQ(t.TakeShutdown(), Ids({4}));
  s[1].dying = true;  // destroyed: a death, not a shutdown
  EXPECT_EQ(t.Update(s), Ids({4}));
  EXPECT_TRUE(t.TakeShutdown().empty());
}

TEST(DeathTracker, ReusedDomidIsANewDomain) {
  DeathTracker t;
  std::vector<DomainState> s = {{DomId(0)}, {DomId(7), true}};
  t.Reset(s);
  EXPECT_EQ(t.Update(s), Ids({7}));
  s[1].dying = false;  // gone and created again with the same id, seen alive
  EXPECT_TRUE(t.Update(s).empty());
  s[1].dying = true;
  EXPECT_EQ(t.Update(s), Ids({7}));
}

TEST(DeathTracker, SeveralInAscendingOrder) {
  DeathTracker t;
  t.Reset(std::vector<DomainState>{{DomId(0)}, {DomId(9)}, {DomId(2)}});
  EXPECT_EQ(t.Update(std::vector<DomainState>{{DomId(0)}, {DomId(2), true}}), Ids({2, 9}));
}

}  // namespace
}  // namespace xpv::platform::xen
