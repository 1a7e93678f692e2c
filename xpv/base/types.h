// Strong types for the identifiers that must not be mixed.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>

namespace xpv {

// A Xen domain id. Xen's domid_t is 16 bits; the xenstore wire carries decimal text, so the store
// keeps the 32-bit value a client sent and compares it exactly as Xen's daemons do.
struct DomId {
  uint32_t value = 0;

  constexpr DomId() = default;
  constexpr explicit DomId(uint32_t v) : value(v) {}
  constexpr auto operator<=>(const DomId&) const = default;
};

inline constexpr DomId kDom0{0};
// DOMID_SELF (xen.h): "the caller's own domain" where a domid is expected.
inline constexpr DomId kDomIdSelf{0x7FF0};
// DOMID_FIRST_RESERVED (xen.h): ids from here on are not ordinary domains.
inline constexpr uint32_t kDomIdFirstReserved = 0x7FF0;

}  // namespace xpv

template <>
struct std::hash<xpv::DomId> {
  size_t operator()(xpv::DomId d) const noexcept { return std::hash<uint32_t>{}(d.value); }
};
