// What sim_test_guest, a domain program for the process tests, reports in its store page.
#pragma once

#include <cstdint>

namespace xpv::platform::sim::testing {

inline constexpr uint32_t kGuestMagic = 0x54534547;  // "GEST"

struct GuestReport {
  uint32_t magic;
  uint32_t domid;      // what ConnectSim() said
  uint32_t env_domid;  // what $XPV_DOMID said
  uint32_t fd_unset;   // 1 if ConnectSim() removed XPV_HV_FD from the environment
  uint32_t ref;        // a page filled with kGuestFill, granted read-write to dom0
  uint32_t port;       // an unbound port offered to dom0
  uint32_t events;     // notifications received on it (written atomically)
};

inline constexpr uint8_t kGuestFill = 0xC5;

}  // namespace xpv::platform::sim::testing
