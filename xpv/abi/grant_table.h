// The grant-table ABI: Xen's own public/grant_table.h (libxen-dev), included as is. Raw ABI
// integers (GTF_*, GNTST_*, GNTCOPY_*) live here and in the simulated hypervisor that implements
// them; device code sees platform::GrantStatus and strong GrantRef/Gfn types instead.
#pragma once

#include <cstddef>
#include <cstdint>

extern "C" {
#include <xen/grant_table.h>
}

namespace xpv::abi {

// grant_table.h: "Version 1 of the grant table entry structure": flags, domid, frame.
static_assert(sizeof(grant_entry_v1_t) == 8);
static_assert(offsetof(grant_entry_v1_t, flags) == 0);
static_assert(offsetof(grant_entry_v1_t, domid) == 2);
static_assert(offsetof(grant_entry_v1_t, frame) == 4);
static_assert(sizeof(domid_t) == 2);
static_assert(sizeof(grant_ref_t) == 4);

// Xen updates flags and domid together with one 32-bit cmpxchg (grant_table.c's union
// grant_combo, "NB. Endianness!"): flags are the low half on x86.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "grant_combo layout assumes little-endian");

static_assert(sizeof(gnttab_copy_t) == 40);
static_assert(offsetof(gnttab_copy_t, len) == 32);
static_assert(offsetof(gnttab_copy_t, status) == 36);

inline constexpr uint32_t kGrantEntriesPerFrame = 4096 / sizeof(grant_entry_v1_t);

static_assert(GNTST_okay == 0 && GNTST_general_error == -1 && GNTST_bad_domain == -2 &&
              GNTST_bad_gntref == -3 && GNTST_bad_handle == -4 && GNTST_permission_denied == -8 &&
              GNTST_bad_page == -9 && GNTST_bad_copy_arg == -10 && GNTST_eagain == -12 &&
              GNTST_no_space == -13);
static_assert(GNTTAB_RESERVED_XENSTORE == 1 && GNTTAB_NR_RESERVED_ENTRIES == 8);

}  // namespace xpv::abi
