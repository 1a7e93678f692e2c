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

namespace xpv {

// A grant reference: an index into a domain's grant table (grant_table.h grant_ref_t).
struct GrantRef {
  uint32_t value = 0;
  constexpr GrantRef() = default;
  constexpr explicit GrantRef(uint32_t v) : value(v) {}
  constexpr auto operator<=>(const GrantRef&) const = default;
};

// An event channel port, local to one domain (event_channel.h evtchn_port_t).
struct EvtchnPort {
  uint32_t value = 0;
  constexpr EvtchnPort() = default;
  constexpr explicit EvtchnPort(uint32_t v) : value(v) {}
  constexpr auto operator<=>(const EvtchnPort&) const = default;
};

// A guest frame number: a page index into a domain's RAM.
struct Gfn {
  uint64_t value = 0;
  constexpr Gfn() = default;
  constexpr explicit Gfn(uint64_t v) : value(v) {}
  constexpr auto operator<=>(const Gfn&) const = default;
};

// GNTTAB_RESERVED_XENSTORE (grant_table.h): the grant of a domain's store page.
inline constexpr GrantRef kGrantRefXenstore{1};
inline constexpr size_t kPageSize = 4096;

}  // namespace xpv
