#include "xpv/xenstore/path.h"

#include <gtest/gtest.h>

#include <string>

namespace xpv::xenstore {
namespace {

std::string Canon(std::string_view raw, Special special = Special::kReject, uint32_t dom = 5,
                  size_t path_max = kDefaultPathMax) {
  auto r = Canonicalize(DomId(dom), raw, special, path_max);
  return r ? *r : "ERR";
}

TEST(PathTest, DomainPath) {
  EXPECT_EQ(DomainPath(0), "/local/domain/0");
  EXPECT_EQ(DomainPath(32752), "/local/domain/32752");
}

TEST(PathTest, AbsolutePathsStayAsTheyAre) {
  EXPECT_EQ(Canon("/"), "/");
  EXPECT_EQ(Canon("/a/b-c_D9"), "/a/b-c_D9");
  EXPECT_EQ(Canon("/local/domain/6/x"), "/local/domain/6/x");
}

TEST(PathTest, RelativePathsResolveUnderTheCallersDomainPath) {
  EXPECT_EQ(Canon("device/vbd"), "/local/domain/5/device/vbd");
  EXPECT_EQ(Canon("x", Special::kReject, 0), "/local/domain/0/x");
}

TEST(PathTest, EmptyPathIsInvalid) {
  // xenstore.txt: "The empty path is also forbidden"; relative, it would end in a slash.
  EXPECT_EQ(Canon(""), "ERR");
}

TEST(PathTest, DoubledAndTrailingSlashesAreInvalid) {
  EXPECT_EQ(Canon("/a//b"), "ERR");
  EXPECT_EQ(Canon("//"), "ERR");
  EXPECT_EQ(Canon("/a/"), "ERR");
  EXPECT_EQ(Canon("a/"), "ERR");
  EXPECT_EQ(Canon("a//b"), "ERR");
}

TEST(PathTest, OnlyAlphanumericsAndDashSlashUnderscoreAtAreValid) {
  for (std::string_view bad : {"/a b", "/a.b", "/..", "/a/../b", "/a\tb", "/a\nb", "/a:b", "/a\\b",
                               "/\xc3\xa9", "/a*", "/a%2f"}) {
    EXPECT_EQ(Canon(bad), "ERR") << bad;
  }
  EXPECT_EQ(Canon("/a@b"), "/a@b");
}

TEST(PathTest, DotDotCannotEscapeTheDomainPath) {
  EXPECT_EQ(Canon("../6/secret"), "ERR");
  EXPECT_EQ(Canon(".."), "ERR");
}

TEST(PathTest, SpecialPathsOnlyWhereAllowed) {
  EXPECT_EQ(Canon("@introduceDomain"), "ERR");
  EXPECT_EQ(Canon("@introduceDomain", Special::kAllow), "@introduceDomain");
  EXPECT_EQ(Canon("@releaseDomain", Special::kAllow), "@releaseDomain");
  // Xen checks only a special name's length.
  EXPECT_EQ(Canon("@any name.at/all", Special::kAllow), "@any name.at/all");
  // A relative path is never special, even when it contains '@' later.
  EXPECT_EQ(Canon("a@b", Special::kAllow), "/local/domain/5/a@b");
}

TEST(PathTest, PathMaxCountsWithoutTheDomainPrefix) {
  const std::string rel(kDefaultPathMax, 'x');
  // Relative: the whole of `rel` is counted, not the prefix.
  EXPECT_EQ(Canon(rel), "/local/domain/5/" + rel);
  EXPECT_EQ(Canon(rel + "y"), "ERR");
  // The same through the absolute spelling, and for dom0.
  EXPECT_EQ(Canon("/local/domain/5/" + rel, Special::kReject, 0), "/local/domain/5/" + rel);
  EXPECT_EQ(Canon("/local/domain/5/" + rel + "y", Special::kReject, 0), "ERR");
  // Outside /local/domain the whole path counts.
  EXPECT_EQ(Canon("/" + std::string(kDefaultPathMax - 1, 'x')),
            "/" + std::string(kDefaultPathMax - 1, 'x'));
  EXPECT_EQ(Canon("/" + std::string(kDefaultPathMax, 'x')), "ERR");
  EXPECT_EQ(Canon("/abc", Special::kReject, 5, 3), "ERR");
  EXPECT_EQ(Canon("/ab", Special::kReject, 5, 3), "/ab");
}

TEST(PathTest, SpecialPathsAreBoundedByPathMax) {
  EXPECT_EQ(Canon("@" + std::string(kDefaultPathMax, 'x'), Special::kAllow), "ERR");
  EXPECT_NE(Canon("@" + std::string(kDefaultPathMax - 1, 'x'), Special::kAllow), "ERR");
}

TEST(PathTest, CountedPathLengthFollowsXensSscanf) {
  EXPECT_EQ(CountedPathLength("/local/domain/5/abc"), 3u);
  EXPECT_EQ(CountedPathLength("/local/domain/12345/abc"), 3u);
  // %5u reads at most five digits, then needs a slash.
  EXPECT_EQ(CountedPathLength("/local/domain/123456/abc"), 24u);
  EXPECT_EQ(CountedPathLength("/local/domain/5"), 15u);
  EXPECT_EQ(CountedPathLength("/local/domain//abc"), 18u);
  EXPECT_EQ(CountedPathLength("/local/domain/x/abc"), 19u);
  EXPECT_EQ(CountedPathLength("/other"), 6u);
}

TEST(PathTest, ParentAndBaseName) {
  EXPECT_EQ(ParentPath("/a/b/c"), "/a/b");
  EXPECT_EQ(ParentPath("/a"), "/");
  EXPECT_EQ(ParentPath("/"), "/");
  EXPECT_EQ(BaseName("/a/b/c"), "c");
  EXPECT_EQ(BaseName("/a"), "a");
}

TEST(PathTest, IsSelfOrDescendantIsNotAStringPrefixTest) {
  EXPECT_TRUE(IsSelfOrDescendant("/a", "/a"));
  EXPECT_TRUE(IsSelfOrDescendant("/a/b", "/a"));
  EXPECT_TRUE(IsSelfOrDescendant("/a/b", "/"));
  EXPECT_TRUE(IsSelfOrDescendant("/", "/"));
  EXPECT_FALSE(IsSelfOrDescendant("/ab", "/a"));
  EXPECT_FALSE(IsSelfOrDescendant("/a", "/a/b"));
  EXPECT_FALSE(IsSelfOrDescendant("@introduceDomain", "/"));
}

TEST(PathTest, DepthBelow) {
  EXPECT_EQ(DepthBelow("/a", "/a"), 0u);
  EXPECT_EQ(DepthBelow("/a/b", "/a"), 1u);
  EXPECT_EQ(DepthBelow("/a/b/c", "/a"), 2u);
  EXPECT_EQ(DepthBelow("/a", "/"), 1u);
  EXPECT_EQ(DepthBelow("/a/b", "/"), 2u);
}

TEST(PathTest, XenAtoiMatchesGlibcAtoiIntoUnsigned) {
  EXPECT_EQ(XenAtoi("12"), 12u);
  EXPECT_EQ(XenAtoi("12abc"), 12u);
  EXPECT_EQ(XenAtoi(" 7"), 7u);
  EXPECT_EQ(XenAtoi("abc"), 0u);
  EXPECT_EQ(XenAtoi(""), 0u);
  EXPECT_EQ(XenAtoi("-1"), UINT32_MAX);
  EXPECT_EQ(XenAtoi("4294967296"), 0u);
  EXPECT_EQ(XenAtoi("4294967301"), 5u);
}

}  // namespace
}  // namespace xpv::xenstore
