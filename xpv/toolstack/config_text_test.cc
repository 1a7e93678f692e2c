#include "xpv/toolstack/config_text.h"

#include <gtest/gtest.h>

#include <string>

namespace xpv::toolstack {
namespace {

std::string ErrorOf(const ConfigStatus& status) {
  return status ? "OK" : status.error().message;
}

TEST(ParseXlIntegerTest, ReadsDecimalHexAndOctalLikeStrtolBaseZero) {
  EXPECT_EQ(ParseXlInteger("0"), 0u);
  EXPECT_EQ(ParseXlInteger("512"), 512u);
  EXPECT_EQ(ParseXlInteger("0x200"), 512u);
  EXPECT_EQ(ParseXlInteger("0X2aF"), 0x2afu);
  EXPECT_EQ(ParseXlInteger("01000"), 512u);
  EXPECT_EQ(ParseXlInteger("18446744073709551615"), UINT64_MAX);
  EXPECT_EQ(ParseXlInteger("0xffffffffffffffff"), UINT64_MAX);
}

TEST(ParseXlIntegerTest, RefusesEverythingElse) {
  for (const char* bad : {"", "-1", "+1", " 1", "1 ", "08", "0x", "0xg", "12ab", "1.5",
                          "18446744073709551616", "0x10000000000000000"}) {
    EXPECT_EQ(ParseXlInteger(bad), std::nullopt) << bad;
  }
}

TEST(QuoteXlStringTest, EscapesQuotesBackslashesAndControlBytes) {
  EXPECT_EQ(QuoteXlString("plain"), "\"plain\"");
  EXPECT_EQ(QuoteXlString(""), "\"\"");
  EXPECT_EQ(QuoteXlString("say \"hi\" \\o/"), R"("say \"hi\" \\o/")");
  EXPECT_EQ(QuoteXlString("a\nb\tc\rd"), R"("a\nb\tc\rd")");
  EXPECT_EQ(QuoteXlString("\x01\x7f"), R"("\x01\x7f")");
  EXPECT_EQ(QuoteXlString("caf\xc3\xa9 'x'"), "\"caf\xc3\xa9 'x'\"");
}

TEST(QuoteForMessageTest, CutsLongTextAt48Bytes) {
  const std::string long_text(60, 'a');
  EXPECT_EQ(QuoteForMessage("lots"), "\"lots\"");
  EXPECT_EQ(QuoteForMessage(long_text), "\"" + std::string(48, 'a') + "\"...");
  EXPECT_EQ(QuoteForMessage(std::string(48, 'b')), "\"" + std::string(48, 'b') + "\"");
}

TEST(CheckDomainNameTest, AcceptsLettersDigitsUnderscoreDashDot) {
  for (const char* good : {"web", "Web-1.example", "_x", "9lives", "a", "x_y-z.w"}) {
    EXPECT_EQ(ErrorOf(CheckDomainName(good)), "OK") << good;
  }
  EXPECT_EQ(ErrorOf(CheckDomainName(std::string(64, 'n'))), "OK");
}

TEST(CheckDomainNameTest, EachRuleHasItsMessage) {
  EXPECT_EQ(ErrorOf(CheckDomainName("")), "must not be empty");
  EXPECT_EQ(ErrorOf(CheckDomainName(std::string(65, 'n'))),
            "\"" + std::string(48, 'n') + "\"... is longer than 64 characters");
  EXPECT_EQ(ErrorOf(CheckDomainName("a b")),
            R"("a b": only letters, digits, "_", "-" and "." are allowed)");
  EXPECT_EQ(ErrorOf(CheckDomainName("a/b")),
            R"("a/b": only letters, digits, "_", "-" and "." are allowed)");
  EXPECT_EQ(ErrorOf(CheckDomainName("..")), R"(".." must start with a letter, a digit or "_")");
  EXPECT_EQ(ErrorOf(CheckDomainName("-rf")), R"("-rf" must start with a letter, a digit or "_")");
  EXPECT_EQ(ErrorOf(CheckDomainName("123")), R"("123" is all digits, which reads as a domain id)");
}

TEST(CheckDomainRefTest, TakesANameOrADomainId) {
  EXPECT_EQ(ErrorOf(CheckDomainRef("driver-dom")), "OK");
  EXPECT_EQ(ErrorOf(CheckDomainRef("0")), "OK");
  EXPECT_EQ(ErrorOf(CheckDomainRef("32751")), "OK");
  EXPECT_EQ(ErrorOf(CheckDomainRef("32752")), R"(domain id "32752" is out of range)");
  EXPECT_EQ(ErrorOf(CheckDomainRef("99999999999999999999999")),
            R"(domain id "99999999999999999999999" is out of range)");
  EXPECT_EQ(ErrorOf(CheckDomainRef("007")), R"(domain id "007" has a leading zero)");
  EXPECT_EQ(ErrorOf(CheckDomainRef("a b")),
            R"("a b": only letters, digits, "_", "-" and "." are allowed)");
}

}  // namespace
}  // namespace xpv::toolstack
