#include "xpv/base/result.h"

#include <gtest/gtest.h>

#include <string>

namespace xpv {
namespace {

Result<int> ParsePositive(int v) {
  if (v <= 0) return Err(EINVAL, "not positive");
  return v;
}

Result<std::string> Twice(int v) {
  XPV_ASSIGN_OR_RETURN(int n, ParsePositive(v));
  return std::to_string(n * 2);
}

Status Check(int v) {
  XPV_TRY(ParsePositive(v));
  return Ok();
}

TEST(Result, CarriesValueOrError) {
  EXPECT_EQ(*Twice(21), "42");
  auto bad = Twice(-1);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, EINVAL);
  EXPECT_EQ(bad.error().message, "not positive");
  EXPECT_TRUE(Check(1).has_value());
  EXPECT_EQ(Check(0).error().code, EINVAL);
}

TEST(ResultDeathTest, ValueOfErrorIsABug) {
  EXPECT_DEATH({ (void)ParsePositive(0).value(); }, "CHECK failed");
}

}  // namespace
}  // namespace xpv
