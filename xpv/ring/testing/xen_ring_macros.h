// Xen's own ring macros (public/io/ring.h, libxen-dev) for tests that check our rings against them.
// Test-only: the macros name barriers the including code must define.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

extern "C" {
#include <xen/io/blkif.h>
#include <xen/io/ring.h>
}

#include "xpv/abi/blkif.h"

// __XEN_INTERFACE_VERSION__ is 0 outside Xen, so ring.h's xen_mb() and friends expand to these.
#ifndef mb
#define mb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define rmb() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#define wmb() __atomic_thread_fence(__ATOMIC_RELEASE)
#endif

// The x86_32 blkif layout as a ring type of Xen's macros (blkif.h defines only the native one).
DEFINE_RING_TYPES(blkif_x86_32, struct xpv::abi::blkif::x86_32::Request,
                  struct xpv::abi::blkif::x86_32::Response);

// A small request/response pair for non-blkif checks.
struct small_req {
  uint32_t id;
  uint16_t op;
  uint8_t body[10];
};
struct small_rsp {
  uint32_t id;
  int16_t status;
};
DEFINE_RING_TYPES(small, struct small_req, struct small_rsp);
