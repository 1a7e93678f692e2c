// Quotas (CONTROL quota, GET_QUOTA / SET_QUOTA, and what each limits) and domain lifetime as it
// affects accounting: dom0 is exempt, guests are not, and nothing a guest does gets it past a
// limit.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "xpv/xenstore/engine.h"
#include "xpv/xenstore/testing/engine_fixture.h"
#include "xpv/xenstore/testing/fake_sink.h"

namespace xpv::xenstore {
namespace {

using namespace std::string_literals;
using testing::EngineFixture;
using testing::FakeClient;
using testing::Outcome;
using testing::Strings;

class QuotaTest : public EngineFixture {};

TEST_F(QuotaTest, ControlQuotaReportsEveryQuotaAndItsValue) {
  auto r = dom0.Call(MsgType::kControl, Strings({"quota"}));
  ASSERT_TRUE(r.has_value());
  for (const auto& q : kQuotaTable) {
    EXPECT_NE(r->find(q.name), std::string::npos) << q.name;
    EXPECT_NE(r->find(std::to_string(q.default_value)), std::string::npos) << q.name;
  }
  EXPECT_EQ(r->back(), '\0');
}

TEST_F(QuotaTest, ControlQuotaSetRejectsBadArguments) {
  EXPECT_EQ(Outcome(dom0.Control({"quota", "set", "no-such-quota", "1"})), "EINVAL");
  EXPECT_EQ(Outcome(dom0.Control({"quota", "set", "nodes", "many"})), "EINVAL");
  EXPECT_EQ(Outcome(dom0.Control({"quota", "set", "nodes", "-1"})), "EINVAL");
  EXPECT_EQ(Outcome(dom0.Control({"quota", "set", "nodes"})), "EINVAL");
  EXPECT_EQ(Outcome(dom0.Control({"quota", "5", "extra"})), "EINVAL");
  EXPECT_EQ(Outcome(dom0.Control({"quota-soft", "set", "nodes", "1"})), "EINVAL");
}

TEST_F(QuotaTest, ControlQuotaOfADomainReportsItsUsage) {
  ASSERT_EQ(Outcome(dom5.Write("a/b", "v")), "OK");
  ASSERT_EQ(Outcome(dom5.Watch("a", "t")), "OK");
  ASSERT_TRUE(dom5.TxStart().has_value());
  auto r = dom0.Call(MsgType::kControl, Strings({"quota", "5"}));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->rfind("Domain 5:\n", 0), 0u) << *r;
  EXPECT_EQ(r->back(), '\0');
  EXPECT_EQ(testing::QuotaRow(dom0, DomId(5), "nodes"), 3);
  EXPECT_EQ(testing::QuotaRow(dom0, DomId(5), "watches"), 1);
  EXPECT_EQ(testing::QuotaRow(dom0, DomId(5), "transactions"), 1);
  EXPECT_GT(testing::QuotaRow(dom0, DomId(5), "memory"), 0);
  EXPECT_EQ(Outcome(dom0.Call(MsgType::kControl, Strings({"quota", "9"}))), "ENOENT");
}

TEST_F(QuotaTest, ControlQuotaSetAppliesToKnownAndLaterDomains) {
  SetQuota("nodes", 3);
  ASSERT_EQ(Outcome(dom5.Write("a", "")), "OK");
  ASSERT_EQ(Outcome(dom5.Write("b", "")), "OK");
  EXPECT_EQ(Outcome(dom5.Write("c", "")), "ENOSPC");
  EXPECT_EQ(Outcome(dom5.Mkdir("c")), "ENOSPC");
  testing::IntroduceWithHome(dom0, DomId(7));
  FakeClient dom7(engine, DomId(7), Privilege::kUnprivileged);
  ASSERT_EQ(Outcome(dom7.Write("a", "")), "OK");
  ASSERT_EQ(Outcome(dom7.Write("b", "")), "OK");
  EXPECT_EQ(Outcome(dom7.Write("c", "")), "ENOSPC");
  EXPECT_EQ(*dom0.Call(MsgType::kGetQuota,
                       "7\0"
                       "nodes\0"s),
            "3\0"s);
}

TEST_F(QuotaTest, Dom0IsExemptFromQuotas) {
  SetQuota("nodes", 1);
  SetQuota("node-size", 1);
  SetQuota("permissions", 1);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(Outcome(dom0.Write("/d0/" + std::to_string(i), "long value")), "OK");
  }
  EXPECT_EQ(Outcome(dom0.SetPerms("/d0/0", {"n0", "r1", "r2", "r3"})), "OK");
}

TEST_F(QuotaTest, GetQuotaListsNamesAndReadsValues) {
  auto names = dom0.Call(MsgType::kGetQuota, "");
  ASSERT_TRUE(names.has_value());
  EXPECT_EQ(names->back(), '\0');
  for (const auto& q : kQuotaTable) EXPECT_NE(names->find(q.name), std::string::npos) << q.name;
  EXPECT_EQ(*dom0.Call(MsgType::kGetQuota, "nodes\0"s), "1000\0"s);
  EXPECT_EQ(*dom0.Call(MsgType::kGetQuota,
                       "5\0"
                       "watches\0"s),
            "128\0"s);
  EXPECT_EQ(Outcome(dom0.Call(MsgType::kGetQuota,
                              "9\0"
                              "nodes\0"s)),
            "ENOENT");
  EXPECT_EQ(Outcome(dom0.Call(MsgType::kGetQuota,
                              "x\0"
                              "nodes\0"s)),
            "EINVAL");
}

TEST_F(QuotaTest, SetQuotaOfOneDomainLimitsOnlyThatDomain) {
  ASSERT_EQ(Outcome(dom0.Call(MsgType::kSetQuota,
                              "5\0"
                              "nodes\0"
                              "2\0"s)),
            "OK");
  EXPECT_EQ(*dom0.Call(MsgType::kGetQuota,
                       "5\0"
                       "nodes\0"s),
            "2\0"s);
  EXPECT_EQ(*dom0.Call(MsgType::kGetQuota, "nodes\0"s), "1000\0"s);
  ASSERT_EQ(Outcome(dom5.Write("a", "")), "OK");
  EXPECT_EQ(Outcome(dom5.Write("b", "")), "ENOSPC");
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Outcome(dom6.Write(std::to_string(i), "")), "OK");
  EXPECT_EQ(Outcome(dom0.Call(MsgType::kSetQuota,
                              "9\0"
                              "nodes\0"
                              "2\0"s)),
            "ENOENT");
}

TEST_F(QuotaTest, SetQuotaGlobalIsTheDefaultForNewDomains) {
  ASSERT_EQ(Outcome(dom0.Call(MsgType::kSetQuota,
                              "nodes\0"
                              "2\0"s)),
            "OK");
  EXPECT_EQ(*dom0.Call(MsgType::kGetQuota, "nodes\0"s), "2\0"s);
  testing::IntroduceWithHome(dom0, DomId(7));
  EXPECT_EQ(*dom0.Call(MsgType::kGetQuota,
                       "7\0"
                       "nodes\0"s),
            "2\0"s);
  FakeClient dom7(engine, DomId(7), Privilege::kUnprivileged);
  ASSERT_EQ(Outcome(dom7.Write("a", "")), "OK");
  EXPECT_EQ(Outcome(dom7.Write("b", "")), "ENOSPC");
}

TEST_F(QuotaTest, DomUCannotRaiseItsOwnQuota) {
  EXPECT_EQ(Outcome(dom5.Call(MsgType::kSetQuota,
                              "5\0"
                              "nodes\0"
                              "99999\0"s)),
            "EACCES");
  EXPECT_EQ(Outcome(dom5.Call(MsgType::kSetQuota,
                              "nodes\0"
                              "99999\0"s)),
            "EACCES");
  EXPECT_EQ(Outcome(dom5.Control({"quota", "set", "nodes", "99999"})), "EACCES");
  EXPECT_EQ(*dom0.Call(MsgType::kGetQuota,
                       "5\0"
                       "nodes\0"s),
            "1000\0"s);
}

// Xen 4.17 charges a node's whole record (header, permissions, value, children) to node-size.
TEST_F(QuotaTest, NodeSizeQuotaBoundsWholeNodesOfDomUs) {
  EXPECT_EQ(Outcome(dom5.Write("big", std::string(2048, 'x'))), "ENOSPC");
  EXPECT_EQ(Outcome(dom5.Read("big")), "ENOENT");
  // The largest value that fits a node with one permission entry...
  size_t largest = 0;
  for (size_t n = 2048; n > 0; --n) {
    if (Outcome(dom5.Write("probe", std::string(n, 'x'))) == "OK") {
      largest = n;
      break;
    }
  }
  ASSERT_GT(largest, 1900u);
  EXPECT_EQ(Outcome(dom5.Write("probe", std::string(largest + 1, 'x'))), "ENOSPC");
  EXPECT_EQ(dom5.Read("probe")->size(), largest);
  // ...does not fit once the node has more permission entries.
  ASSERT_EQ(Outcome(dom5.Write("perms", "")), "OK");
  ASSERT_EQ(Outcome(dom5.SetPerms("perms", {"n5", "r1", "r2", "r3", "r4"})), "OK");
  EXPECT_EQ(Outcome(dom5.Write("perms", std::string(largest, 'x'))), "ENOSPC");
  // Nor once it has children.
  ASSERT_EQ(Outcome(dom5.Write("kids/child", "")), "OK");
  EXPECT_EQ(Outcome(dom5.Write("kids", std::string(largest, 'x'))), "ENOSPC");
  // dom0 is not bound.
  EXPECT_EQ(Outcome(dom0.Write("/local/domain/5/dom0", std::string(4000, 'x'))), "OK");
}

TEST_F(QuotaTest, PermissionsQuotaBoundsEntriesPerNode) {
  ASSERT_EQ(Outcome(dom5.Write("x", "")), "OK");
  EXPECT_EQ(Outcome(dom5.SetPerms("x", {"n5", "r1", "r2", "r3", "r4"})), "OK");
  EXPECT_EQ(Outcome(dom5.SetPerms("x", {"n5", "r1", "r2", "r3", "r4", "r6"})), "ENOSPC");
  EXPECT_EQ(*dom5.GetPerms("x"), "n5\0r1\0r2\0r3\0r4\0"s);
}

TEST_F(QuotaTest, PathMaxQuotaBoundsPathLength) {
  SetQuota("path-max", 10);
  EXPECT_EQ(Outcome(dom5.Write("0123456789", "")), "OK");
  EXPECT_EQ(Outcome(dom5.Write("0123456789a", "")), "EINVAL");
  EXPECT_EQ(Outcome(dom0.Write("/0123456789", "")), "EINVAL");
}

TEST_F(QuotaTest, NodeCountFollowsOwnershipChanges) {
  ASSERT_EQ(OwnedNodes(DomId(5)), 1);
  ASSERT_EQ(Outcome(dom0.Write("/gift", "")), "OK");
  ASSERT_EQ(Outcome(dom0.SetPerms("/gift", {"n5"})), "OK");
  EXPECT_EQ(OwnedNodes(DomId(5)), 2);
  ASSERT_EQ(Outcome(dom0.SetPerms("/gift", {"n6"})), "OK");
  EXPECT_EQ(OwnedNodes(DomId(5)), 1);
  EXPECT_EQ(OwnedNodes(DomId(6)), 2);
  ASSERT_EQ(Outcome(dom0.Rm("/gift")), "OK");
  EXPECT_EQ(OwnedNodes(DomId(6)), 1);
}

TEST_F(QuotaTest, NodesGivenToADomainCountAgainstItsQuota) {
  SetQuota("nodes", 3);
  for (const char* p : {"/g1", "/g2"}) {
    ASSERT_EQ(Outcome(dom0.Write(p, "")), "OK");
    ASSERT_EQ(Outcome(dom0.SetPerms(p, {"n5"})), "OK");
  }
  EXPECT_EQ(Outcome(dom5.Write("a", "")), "ENOSPC");
}

TEST_F(QuotaTest, RemovingNodesGivesQuotaBack) {
  SetQuota("nodes", 3);
  ASSERT_EQ(Outcome(dom5.Write("a", "")), "OK");
  ASSERT_EQ(Outcome(dom5.Write("b", "")), "OK");
  ASSERT_EQ(Outcome(dom5.Write("c", "")), "ENOSPC");
  ASSERT_EQ(Outcome(dom5.Rm("a")), "OK");
  EXPECT_EQ(Outcome(dom5.Write("c", "")), "OK");
  EXPECT_EQ(OwnedNodes(DomId(5)), 3);
}

// One WRITE creates every missing level; each is a node the domain owns.
TEST_F(QuotaTest, DeepWriteCannotEscapeNodeQuota) {
  SetQuota("nodes", 10);
  EXPECT_EQ(Outcome(dom5.Write("a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p", "v")), "ENOSPC");
  EXPECT_LE(OwnedNodes(DomId(5)), 10);
  EXPECT_EQ(Outcome(dom5.Mkdir("q/r/s/t/u/v/w/x/y/z/aa/bb")), "ENOSPC");
  EXPECT_LE(OwnedNodes(DomId(5)), 10);
  // Up to the limit is fine: home + 9 levels.
  EXPECT_EQ(Outcome(dom5.Write("1/2/3/4/5/6/7/8/9", "v")), "OK");
  EXPECT_EQ(OwnedNodes(DomId(5)), 10);
  EXPECT_EQ(Outcome(dom5.Write("1/x", "v")), "ENOSPC");
}

// Xen 4.17 (XSA-322) removes what a released domain owned, so a later domain with the same id
// inherits neither its nodes nor their charge.
TEST_F(QuotaTest, ReleaseRemovesEverythingTheDomainOwned) {
  ASSERT_EQ(Outcome(dom5.Write("a/b/c", "")), "OK");
  ASSERT_EQ(Outcome(dom0.Write("/local/domain/5/backend-owned-by-dom0", "")), "OK");
  ASSERT_EQ(Outcome(dom0.SetPerms("/local/domain/5/backend-owned-by-dom0", {"n0"})), "OK");
  ASSERT_EQ(Outcome(dom0.Write("/vm/5/name", "guest")), "OK");
  ASSERT_EQ(Outcome(dom0.SetPerms("/vm/5", {"n5"})), "OK");
  ASSERT_EQ(Outcome(dom6.Write("kept", "")), "OK");
  ASSERT_EQ(Outcome(dom0.Watch("/vm/5", "vm")), "OK");
  ASSERT_EQ(Outcome(dom0.Watch("@releaseDomain", "rel")), "OK");
  dom0.TakeEvents();
  const size_t before = engine.tree().node_count();
  ASSERT_EQ(Outcome(dom0.Call(MsgType::kRelease, "5\0"s)), "OK");
  EXPECT_EQ(Outcome(dom0.Read("/local/domain/5")), "ENOENT");
  EXPECT_EQ(Outcome(dom0.Read("/vm/5")), "ENOENT");
  EXPECT_EQ(*dom0.Read("/vm"), "");
  EXPECT_EQ(*dom6.Read("kept"), "");
  EXPECT_EQ(engine.tree().node_count(), before - 7);
  auto events = dom0.TakeEvents();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].path, "/vm/5");
  EXPECT_EQ(events[1].path, "@releaseDomain");
}

TEST_F(QuotaTest, AReusedDomidStartsWithACleanCharge) {
  SetQuota("nodes", 5);
  ASSERT_EQ(Outcome(dom5.Write("a/b/c", "")), "OK");  // home + 3
  ASSERT_EQ(Outcome(dom0.Call(MsgType::kRelease, "5\0"s)), "OK");
  world_.dom5.reset();
  testing::IntroduceWithHome(dom0, DomId(5));
  FakeClient reborn(engine, DomId(5), Privilege::kUnprivileged);
  EXPECT_EQ(OwnedNodes(DomId(5)), 1);
  EXPECT_EQ(Outcome(reborn.Read("a")), "ENOENT");
  for (const char* p : {"w", "x", "y", "z"}) EXPECT_EQ(Outcome(reborn.Write(p, "")), "OK");
  EXPECT_EQ(Outcome(reborn.Write("over", "")), "ENOSPC");
  EXPECT_EQ(OwnedNodes(DomId(5)), 5);
}

// A released domain's connection can still send requests until the transport closes it; nothing
// it does then may leave nodes charged to no one.
TEST_F(QuotaTest, RequestsFromAReleasedDomainsConnectionKeepAccountingConsistent) {
  const uint32_t tx = *dom5.TxStart();
  ASSERT_EQ(Outcome(dom5.Write("pending", "", tx)), "OK");
  ASSERT_EQ(Outcome(dom0.Call(MsgType::kRelease, "5\0"s)), "OK");
  (void)dom5.TxEnd(tx, true);
  (void)dom5.Write("/local/domain/6/x", "");
  ASSERT_EQ(Outcome(dom0.Call(MsgType::kIntroduce,
                              "5\0"
                              "1\0"
                              "2\0"s)),
            "OK");
  long long owned = 0;
  engine.ForEachNode([&](std::string_view, const Node& n) { owned += n.owner() == DomId(5); });
  EXPECT_EQ(OwnedNodes(DomId(5)), owned);
}

// The root cannot be removed with the rest of a released domain's nodes; it must not stay charged
// to a domain the store has forgotten (found by the generated fuzz scripts).
TEST_F(QuotaTest, ReleasingADomainThatOwnsTheRootLeavesNothingChargedToIt) {
  ASSERT_EQ(Outcome(dom0.SetPerms("/", {"r5"})), "OK");
  ASSERT_EQ(OwnedNodes(DomId(5)), 2);
  ASSERT_EQ(Outcome(dom0.Call(MsgType::kRelease, "5\0"s)), "OK");
  ASSERT_EQ(Outcome(dom0.Call(MsgType::kIntroduce,
                              "5\0"
                              "1\0"
                              "2\0"s)),
            "OK");
  long long owned = 0;
  engine.ForEachNode([&](std::string_view, const Node& n) { owned += n.owner() == DomId(5); });
  EXPECT_EQ(owned, 0);
  EXPECT_EQ(OwnedNodes(DomId(5)), 0);
  EXPECT_EQ(*dom0.GetPerms("/"), "r0\0"s);
}

TEST_F(QuotaTest, DomainGoneRemovesWhatTheDomainOwned) {
  ASSERT_EQ(Outcome(dom5.Write("a/b", "")), "OK");
  engine.DomainGone(DomId(5));
  EXPECT_EQ(Outcome(dom0.Read("/local/domain/5")), "ENOENT");
  EXPECT_FALSE(engine.IsIntroduced(DomId(5)));
  ASSERT_EQ(Outcome(dom0.Call(MsgType::kIntroduce,
                              "5\0"
                              "1\0"
                              "2\0"s)),
            "OK");
  EXPECT_EQ(OwnedNodes(DomId(5)), 0);
}

}  // namespace
}  // namespace xpv::xenstore
