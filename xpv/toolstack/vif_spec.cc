#include "xpv/toolstack/vif_spec.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <set>
#include <vector>

#include "xpv/toolstack/config_text.h"

namespace xpv::toolstack {
namespace {

constexpr size_t kMaxVifSpec = 4096;
constexpr std::string_view kSpace = " \t\n\r";

// The keys of xl's parse_nic_config that xpv keeps as plain strings.
constexpr std::array<std::string_view, 10> kOtherKeys = {
    "ip", "type", "model", "vifname", "script", "rate", "gatewaydev", "forwarddev", "mtu", "devid",
};

std::string_view Trim(std::string_view s) {
  const size_t begin = s.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  return s.substr(begin, s.find_last_not_of(kSpace) - begin + 1);
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsOtherKey(std::string_view key) {
  for (std::string_view k : kOtherKeys) {
    if (k == key) return true;
  }
  return false;
}

}  // namespace

ConfigResult<MacAddress> ParseMacAddress(std::string_view text) {
  // "xx:xx:xx:xx:xx:xx" is exactly 17 characters.
  MacAddress mac;
  bool ok = text.size() == 17;
  for (size_t i = 0; ok && i < mac.bytes.size(); ++i) {
    const int hi = HexValue(text[3 * i]);
    const int lo = HexValue(text[3 * i + 1]);
    ok = hi >= 0 && lo >= 0 && (i == 5 || text[3 * i + 2] == ':');
    if (ok) mac.bytes[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  if (!ok) {
    return ConfigErr(fmt::format("{} is not a MAC address (six hex pairs, like 00:16:3e:74:34:32)",
                                 QuoteForMessage(text)));
  }
  if (mac.bytes[0] & 1) {
    return ConfigErr(fmt::format("{} is a multicast address", QuoteForMessage(text)));
  }
  return mac;
}

std::string ToString(const MacAddress& mac) {
  return fmt::format("{:02x}", fmt::join(mac.bytes, ":"));
}

ConfigResult<VifSpec> ParseVifSpec(std::string_view spec) {
  if (spec.size() > kMaxVifSpec) return ConfigErr(fmt::format("longer than {} bytes", kMaxVifSpec));
  VifSpec vif;
  std::set<std::string, std::less<>> seen;
  size_t pos = 0;
  while (pos <= spec.size()) {
    const size_t comma = spec.find(',', pos);
    const std::string_view pair =
        Trim(spec.substr(pos, comma == std::string_view::npos ? spec.size() - pos : comma - pos));
    pos = comma == std::string_view::npos ? spec.size() + 1 : comma + 1;
    if (pair.empty()) continue;

    const size_t eq = pair.find('=');
    const std::string_view key =
        eq == std::string_view::npos ? std::string_view{} : Trim(pair.substr(0, eq));
    if (key.empty()) {
      return ConfigErr(fmt::format("expected key=value, got {}", QuoteForMessage(pair)));
    }
    if (key != "mac" && key != "bridge" && key != "backend" && !IsOtherKey(key)) {
      return ConfigErr(fmt::format("unknown parameter {}", QuoteForMessage(key)));
    }
    if (!seen.emplace(key).second) return ConfigErr(fmt::format("{} given twice", key));
    const std::string_view value = Trim(pair.substr(eq + 1));

    if (key == "mac") {
      XPV_ASSIGN_OR_RETURN(vif.mac, ParseMacAddress(value));
    } else if (key == "bridge") {
      vif.bridge = value;
    } else if (key == "backend") {
      if (!value.empty()) {
        if (auto checked = CheckDomainRef(value); !checked) {
          return ConfigErr("backend: " + checked.error().message);
        }
      }
      vif.backend = value;
    } else {
      // xl-network-configuration: type is "ioemu" (emulated plus PV) or "vif" (PV only).
      if (key == "type" && value != "vif" && value != "ioemu") {
        return ConfigErr(fmt::format("unknown type {} (use vif or ioemu)", QuoteForMessage(value)));
      }
      if (!value.empty()) vif.other.emplace(key, value);
    }
  }
  return vif;
}

std::string ToString(const VifSpec& vif) {
  std::vector<std::string> parts;
  if (vif.mac) parts.push_back("mac=" + ToString(*vif.mac));
  if (!vif.bridge.empty()) parts.push_back("bridge=" + vif.bridge);
  if (!vif.backend.empty()) parts.push_back("backend=" + vif.backend);
  for (const auto& [key, value] : vif.other) parts.push_back(fmt::format("{}={}", key, value));
  return fmt::format("{}", fmt::join(parts, ", "));
}

}  // namespace xpv::toolstack
