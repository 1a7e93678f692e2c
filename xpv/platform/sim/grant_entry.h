// The v1 grant-entry flag protocol, both sides, in one place. Quotes are from Xen's
// public/grant_table.h ("Some rough guidelines on accessing and updating grant-table entries")
// and follow common/grant_table.c's _set_status_v1 and gnttab_clear_flags.
//
// The entries live in shared memory written by an untrusted guest at any time, so every access is
// an atomic on the raw entry (never a C++ reference kept across accesses), and the hypervisor side
// bounds its cmpxchg retries as Xen does.
#pragma once

#include <cstdint>

#include "xpv/abi/grant_table.h"

namespace xpv::platform::sim {

// ---------------------------------------------------------------------------------------------
// Guest side (the granting domain).

// "Introducing a valid entry into the grant table: 1. Write ent->domid. 2. Write ent->frame.
//  3. Write memory barrier (WMB). 4. Write ent->flags, inc. valid type."
inline void PublishGrant(grant_entry_v1_t* e, uint16_t domid, uint32_t frame, bool readonly) {
  // SAFETY: `e` points at an aligned entry of a mapped grant table; the atomics make the
  // publish order visible to the hypervisor in another process.
  __atomic_store_n(&e->domid, domid, __ATOMIC_RELAXED);
  __atomic_store_n(&e->frame, frame, __ATOMIC_RELAXED);
  __atomic_thread_fence(__ATOMIC_RELEASE);
  __atomic_store_n(&e->flags,
                   static_cast<uint16_t>(GTF_permit_access | (readonly ? GTF_readonly : 0)),
                   __ATOMIC_RELAXED);
}

enum class EndGrantResult : uint8_t { kEnded, kInUse, kUnstable };

// "Invalidating an unused GTF_permit_access entry: 1. flags = ent->flags. 2. Observe that
//  !(flags & (GTF_reading|GTF_writing)). 3. Check result of SMP-safe CMPXCHG(&ent->flags, flags,
//  0)."
// The loop is Linux's gnttab_end_foreign_access_ref_v1, bounded: only the hypervisor races with
// it, and the hypervisor makes a bounded number of attempts.
inline EndGrantResult EndGrant(grant_entry_v1_t* e) {
  // SAFETY: as in PublishGrant; a 16-bit cmpxchg on the flags, as Linux does.
  uint16_t flags = __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE);
  for (int attempt = 0; attempt < 64; ++attempt) {
    if (flags & (GTF_reading | GTF_writing)) return EndGrantResult::kInUse;
    if (__atomic_compare_exchange_n(&e->flags, &flags, uint16_t{0}, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
      return EndGrantResult::kEnded;
    }
  }
  return EndGrantResult::kUnstable;
}

// ---------------------------------------------------------------------------------------------
// Hypervisor side.

// grant_table.c's union grant_combo: flags and domid read and updated as one 32-bit word.
struct GrantCombo {
  uint16_t flags;
  uint16_t domid;
};

inline uint32_t LoadCombo(const grant_entry_v1_t* e) {
  // SAFETY: flags (offset 0) and domid (offset 2) form the aligned 32-bit word Xen cmpxchgs.
  return __atomic_load_n(reinterpret_cast<const uint32_t*>(e), __ATOMIC_ACQUIRE);
}
inline GrantCombo SplitCombo(uint32_t raw) {
  return {static_cast<uint16_t>(raw & 0xFFFF), static_cast<uint16_t>(raw >> 16)};
}
inline uint32_t JoinCombo(GrantCombo c) {
  return c.flags | (uint32_t{c.domid} << 16);
}

inline uint32_t LoadFrame(const grant_entry_v1_t* e) {
  // SAFETY: an aligned 32-bit field of the shared entry; read once, after the flags were pinned.
  return __atomic_load_n(&e->frame, __ATOMIC_ACQUIRE);
}

// _set_status_v1: sets GTF_reading (and GTF_writing unless `readonly`) with a cmpxchg on the
// combined word, after checking type and domid. The check is made on every call, as Xen makes
// it, also when a read-only pinned entry is upgraded to a writable pin: the guest may have
// rewritten its entry since the first pin. `mapping` adds GTF_sub_page to the type check (a
// sub-page grant may be copied, never mapped). Returns a GNTST_* code.
//
// Deliberate difference: Xen answers GNTST_general_error to a write-pin of a GTF_readonly entry;
// xpv answers GNTST_permission_denied, so a backend can tell "you may only read this" from a bad
// or stale entry (docs/xpv-hv.md).
inline int16_t SetStatus(grant_entry_v1_t* e, bool readonly, bool mapping, uint16_t mapper_domid) {
  const uint16_t mask = GTF_type_mask | (mapping ? GTF_sub_page : 0);
  uint32_t* raw = reinterpret_cast<uint32_t*>(e);
  uint32_t seen = LoadCombo(e);
  // "We bound the number of times we retry CMPXCHG on memory locations that we share with a guest
  //  OS ... so we allow a few retries before failing."
  for (int retries = 0;; ++retries) {
    GrantCombo cur = SplitCombo(seen);
    if ((cur.flags & mask) != GTF_permit_access || cur.domid != mapper_domid) {
      return GNTST_general_error;
    }
    GrantCombo next = cur;
    next.flags |= GTF_reading;
    if (!readonly) {
      next.flags |= GTF_writing;
      if (cur.flags & GTF_readonly) return GNTST_permission_denied;
    }
    // SAFETY: the aligned 32-bit flags+domid word of a mapped entry (see LoadCombo).
    if (__atomic_compare_exchange_n(raw, &seen, JoinCombo(next), false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
      return GNTST_okay;
    }
    if (retries == 4) return GNTST_general_error;  // "Shared grant entry is unstable"
  }
}

// gnttab_clear_flags: atomically clears GTF_reading and/or GTF_writing.
inline void ClearFlags(grant_entry_v1_t* e, uint16_t flags) {
  // SAFETY: an atomic AND on the shared flags; the guest may race, the result is still well formed.
  __atomic_fetch_and(&e->flags, static_cast<uint16_t>(~flags), __ATOMIC_ACQ_REL);
}

}  // namespace xpv::platform::sim
