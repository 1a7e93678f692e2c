#include "xpv/toolstack/vif_spec.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>

namespace xpv::toolstack {
namespace {

template <typename T>
std::string ErrorOf(const ConfigResult<T>& result) {
  return result ? "OK" : result.error().message;
}

VifSpec Parse(std::string_view spec) {
  auto vif = ParseVifSpec(spec);
  EXPECT_TRUE(vif) << spec << ": " << ErrorOf(vif);
  return vif ? *vif : VifSpec{};
}

MacAddress Mac(std::string_view text) {
  auto mac = ParseMacAddress(text);
  EXPECT_TRUE(mac) << ErrorOf(mac);
  return mac ? *mac : MacAddress{};
}

TEST(MacAddressTest, SixHexPairsEitherCase) {
  EXPECT_EQ(Mac("00:16:3E:74:3d:76").bytes,
            (std::array<uint8_t, 6>{0x00, 0x16, 0x3e, 0x74, 0x3d, 0x76}));
  EXPECT_EQ(ToString(Mac("00:16:3E:74:3d:76")), "00:16:3e:74:3d:76");
  EXPECT_EQ(ToString(Mac("fe:ff:ff:ff:ff:ff")), "fe:ff:ff:ff:ff:ff");
}

TEST(MacAddressTest, ErrorNotSixHexPairs) {
  for (const char* bad :
       {"", "00:16:3e:74:34", "00:16:3e:74:34:3", "00:16:3e:74:34:321", "00-16-3e-74-34-32",
        "0:16:3e:74:34:32:", "gg:16:3e:74:34:32", "00:16:3e:74:34:32:00", " 0:16:3e:74:34:32"}) {
    EXPECT_EQ(
        ErrorOf(ParseMacAddress(bad)),
        fmt::format("\"{}\" is not a MAC address (six hex pairs, like 00:16:3e:74:34:32)", bad))
        << bad;
  }
}

TEST(MacAddressTest, ErrorMulticast) {
  EXPECT_EQ(ErrorOf(ParseMacAddress("01:00:5e:00:00:01")),
            R"("01:00:5e:00:00:01" is a multicast address)");
}

TEST(VifSpecTest, TheDocsExamples) {
  const VifSpec first = Parse("mac=00:16:3E:74:3d:76,model=rtl8139,bridge=xenbr0");
  EXPECT_EQ(first.mac, Mac("00:16:3e:74:3d:76"));
  EXPECT_EQ(first.bridge, "xenbr0");
  EXPECT_EQ(first.backend, "");
  EXPECT_EQ(first.other, (std::map<std::string, std::string, std::less<>>{{"model", "rtl8139"}}));
  EXPECT_EQ(ToString(first), "mac=00:16:3e:74:3d:76, bridge=xenbr0, model=rtl8139");

  EXPECT_EQ(Parse("mac=00:16:3E:74:34:32").mac, Mac("00:16:3e:74:34:32"));
  const VifSpec second = Parse("mac=00:16:3e:5f:48:e4,bridge=xenbr1");
  EXPECT_EQ(second.bridge, "xenbr1");
}

TEST(VifSpecTest, EmptySpecMeansEveryDefault) {
  EXPECT_EQ(Parse(""), VifSpec{});
  EXPECT_EQ(Parse(" , ,"), VifSpec{});
  EXPECT_EQ(ToString(VifSpec{}), "");
}

TEST(VifSpecTest, OtherKeysAreKeptAsStrings) {
  const VifSpec vif = Parse(
      "ip=10.0.0.2, script=vif-route, vifname=web0, type=vif, rate=10Mb/s@50ms, backend=net-dom, "
      "mtu=9000, gatewaydev=eth0, forwarddev=eth1, devid=3, model=e1000");
  EXPECT_EQ(vif.backend, "net-dom");
  EXPECT_EQ(vif.other.size(), 10u);
  EXPECT_EQ(vif.other.at("ip"), "10.0.0.2");
  EXPECT_EQ(vif.other.at("rate"), "10Mb/s@50ms");
  EXPECT_EQ(vif.other.at("type"), "vif");
  EXPECT_EQ(Parse("type=ioemu").other.at("type"), "ioemu");
}

TEST(VifSpecTest, WhitespaceAndEmptyEntriesAreIgnored) {
  const VifSpec vif = Parse(" mac = 00:16:3e:00:00:01 ,, bridge = br0 ,");
  EXPECT_EQ(vif.mac, Mac("00:16:3e:00:00:01"));
  EXPECT_EQ(vif.bridge, "br0");
  EXPECT_EQ(Parse("bridge=,ip=").bridge, "");
  EXPECT_TRUE(Parse("ip=").other.empty());
}

TEST(VifSpecTest, ErrorNotAPair) {
  EXPECT_EQ(ErrorOf(ParseVifSpec("bridge")), R"(expected key=value, got "bridge")");
  EXPECT_EQ(ErrorOf(ParseVifSpec("=xenbr0")), R"(expected key=value, got "=xenbr0")");
}

TEST(VifSpecTest, ErrorUnknownParameter) {
  EXPECT_EQ(ErrorOf(ParseVifSpec("bridge=xenbr0,colour=red")), R"(unknown parameter "colour")");
  EXPECT_EQ(ErrorOf(ParseVifSpec("colour=red,colour=blue")), R"(unknown parameter "colour")");
}

TEST(VifSpecTest, ErrorGivenTwice) {
  EXPECT_EQ(ErrorOf(ParseVifSpec("bridge=a,bridge=b")), "bridge given twice");
  EXPECT_EQ(ErrorOf(ParseVifSpec("ip=1.2.3.4, ip = 1.2.3.5")), "ip given twice");
}

TEST(VifSpecTest, ErrorBadMac) {
  EXPECT_EQ(ErrorOf(ParseVifSpec("mac=00:16:3e:74:34")),
            R"("00:16:3e:74:34" is not a MAC address (six hex pairs, like 00:16:3e:74:34:32))");
}

TEST(VifSpecTest, ErrorBadType) {
  EXPECT_EQ(ErrorOf(ParseVifSpec("type=tap")), R"(unknown type "tap" (use vif or ioemu))");
}

TEST(VifSpecTest, ErrorBadBackend) {
  EXPECT_EQ(ErrorOf(ParseVifSpec("backend=-x")),
            R"(backend: "-x" must start with a letter, a digit or "_")");
}

TEST(VifSpecTest, ErrorTooLong) {
  EXPECT_EQ(ErrorOf(ParseVifSpec("ip=" + std::string(5000, '1'))), "longer than 4096 bytes");
}

TEST(VifSpecTest, ToStringRoundTrips) {
  for (const char* spec : {"", "mac=00:16:3E:74:3d:76,model=rtl8139,bridge=xenbr0",
                           "backend=7, script=vif-nat x, ip=10.0.0.2 10.0.0.3, vifname=a=b"}) {
    const VifSpec vif = Parse(spec);
    auto again = ParseVifSpec(ToString(vif));
    ASSERT_TRUE(again) << ToString(vif) << ": " << ErrorOf(again);
    EXPECT_EQ(*again, vif) << spec;
  }
}

}  // namespace
}  // namespace xpv::toolstack
