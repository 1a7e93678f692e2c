// Network interface specifications: one entry of xl.cfg's `vif = [ ... ]`, in the syntax of Xen's
// docs/misc/xl-network-configuration.markdown: comma-separated key=value pairs, all optional.
//
//   "mac=00:16:3E:74:3d:76,model=rtl8139,bridge=xenbr0"
//   ""                                   (every default)
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "xpv/toolstack/config_result.h"

namespace xpv::toolstack {

struct MacAddress {
  std::array<uint8_t, 6> bytes{};

  friend bool operator==(const MacAddress&, const MacAddress&) = default;
};

// Six groups of two hex digits separated by ":". A multicast address (low bit of the first byte)
// is refused: no NIC may have one.
ConfigResult<MacAddress> ParseMacAddress(std::string_view text);
// "00:16:3e:74:34:32", lowercase.
std::string ToString(const MacAddress& mac);

struct VifSpec {
  std::optional<MacAddress> mac;  // nullopt: the toolstack picks one in Xen's OUI, 00:16:3e
  std::string bridge;             // empty: the default bridge
  std::string backend;            // backend domain, name or id; empty: domain 0
  // The other keys xl knows, as written: ip, type (vif or ioemu, checked), model, vifname,
  // script, rate, gatewaydev, forwarddev, mtu, devid.
  std::map<std::string, std::string, std::less<>> other;

  friend bool operator==(const VifSpec&, const VifSpec&) = default;
};

// Parses one vif spec. Whitespace around keys and values is ignored, as are empty entries
// ("a=1,,b=2"). Unknown keys, keys given twice and pairs without "=" are errors (xl refuses
// unknown keys too). Messages carry no location; ParseDomainConfig adds file, line and index.
ConfigResult<VifSpec> ParseVifSpec(std::string_view spec);

// The canonical form: "mac=00:16:3e:00:00:01, bridge=xenbr0, backend=net, ip=10.0.0.2", the
// remaining keys in name order. ParseVifSpec(ToString(v)) == v for every v ParseVifSpec returned.
std::string ToString(const VifSpec& vif);

}  // namespace xpv::toolstack
