#include "xpv/xenstore/perms.h"

#include <gtest/gtest.h>

#include <string>

#include "xpv/xenstore/wire.h"

namespace xpv::xenstore {
namespace {

using namespace std::string_literals;

PermList Parse(std::initializer_list<std::string_view> s) {
  auto r = ParsePerms(std::vector<std::string_view>(s));
  EXPECT_TRUE(r.has_value());
  return r ? *r : PermList{};
}

bool Rejected(std::initializer_list<std::string_view> s) {
  auto r = ParsePerms(std::vector<std::string_view>(s));
  return !r && r.error().code == EINVAL;
}

Caller Dom(uint32_t id) {
  return Caller{DomId(id), false, false, DomId()};
}

TEST(PermsTest, ParsesEachLetter) {
  PermList p = Parse({"n0", "r5", "w6", "b7"});
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p[0], (Perm{DomId(0), kPermNone}));
  EXPECT_EQ(p[1], (Perm{DomId(5), kPermRead}));
  EXPECT_EQ(p[2], (Perm{DomId(6), kPermWrite}));
  EXPECT_EQ(p[3], (Perm{DomId(7), kPermBoth}));
}

TEST(PermsTest, RejectsMalformedEntries) {
  EXPECT_TRUE(Rejected({""}));
  EXPECT_TRUE(Rejected({"x1"}));
  EXPECT_TRUE(Rejected({"r"}));
  EXPECT_TRUE(Rejected({"r1a"}));
  EXPECT_TRUE(Rejected({"r1 "}));
  EXPECT_TRUE(Rejected({"R1"}));
  EXPECT_TRUE(Rejected({"r0x"}));
  EXPECT_TRUE(Rejected({"n0", "bad"}));
}

// libxenstore's xs_strings_to_perms(): strtol(s + 1, &end, 0), truncated to unsigned int.
TEST(PermsTest, DomidsParseLikeStrtolInBaseZero) {
  EXPECT_EQ(Parse({"r-1"})[0].domid, DomId(UINT32_MAX));
  EXPECT_EQ(Parse({"n010"})[0].domid, DomId(8));
  EXPECT_EQ(Parse({"b0x10"})[0].domid, DomId(16));
  EXPECT_EQ(Parse({"w+3"})[0].domid, DomId(3));
}

TEST(PermsTest, FormatIsTheGetPermsReply) {
  EXPECT_EQ(FormatPerms(Parse({"n0", "r5", "w6", "b7"})), "n0\0r5\0w6\0b7\0"s);
  EXPECT_EQ(FormatPerms(*OwnerOnlyPerms(DomId(3))), "n3\0"s);
  // Only the domid is kept, not how it was spelled.
  EXPECT_EQ(FormatPerms(Parse({"r007", "b0x10"})), "r7\0b16\0"s);
}

TEST(PermsTest, FormatThenParseRoundTrips) {
  const PermList p = Parse({"b1", "n2", "r65535", "w4294967295"});
  const std::string text = FormatPerms(p);
  auto again = ParsePerms(SplitStrings(text));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, p);
}

TEST(PermsTest, PrivilegedCallersGetEverything) {
  const Caller dom0{kDom0, true, false, DomId()};
  EXPECT_EQ(PermFor(dom0, Parse({"n7"})), kPermRead | kPermWrite | kPermOwner);
}

TEST(PermsTest, OwnerGetsEverythingWhateverTheDefault) {
  EXPECT_EQ(PermFor(Dom(5), Parse({"n5"})), kPermRead | kPermWrite | kPermOwner);
  // A later entry naming the owner does not reduce the owner's rights.
  EXPECT_EQ(PermFor(Dom(5), Parse({"n5", "n5"})), kPermRead | kPermWrite | kPermOwner);
}

TEST(PermsTest, FirstEntryIsTheDefaultForUnlistedDomains) {
  EXPECT_EQ(PermFor(Dom(6), Parse({"n5"})), kPermNone);
  EXPECT_EQ(PermFor(Dom(6), Parse({"r5"})), kPermRead);
  EXPECT_EQ(PermFor(Dom(6), Parse({"b5"})), kPermBoth);
}

TEST(PermsTest, AnExplicitEntryOverridesTheDefaultEvenDownwards) {
  EXPECT_EQ(PermFor(Dom(6), Parse({"b5", "n6"})), kPermNone);
  EXPECT_EQ(PermFor(Dom(6), Parse({"n5", "w6"})), kPermWrite);
}

TEST(PermsTest, FirstMatchingEntryWins) {
  EXPECT_EQ(PermFor(Dom(6), Parse({"n5", "r6", "b6"})), kPermRead);
}

TEST(PermsTest, NobodyButTheOwnerGetsTheOwnerBit) {
  EXPECT_EQ(PermFor(Dom(6), Parse({"b5", "b6"})) & kPermOwner, 0);
}

TEST(PermsTest, ATargetActsForItsController) {
  // SET_TARGET 5 7: domain 5 (a device model) acts for domain 7.
  const Caller dm{DomId(5), false, true, DomId(7)};
  EXPECT_EQ(PermFor(dm, Parse({"n7"})), kPermRead | kPermWrite | kPermOwner);
  EXPECT_EQ(PermFor(dm, Parse({"n0", "r7"})), kPermRead);
  EXPECT_EQ(PermFor(dm, Parse({"n0", "w8"})), kPermNone);
  // Without the target, domain 5 is just domain 5.
  EXPECT_EQ(PermFor(Dom(5), Parse({"n7"})), kPermNone);
}

}  // namespace
}  // namespace xpv::xenstore
