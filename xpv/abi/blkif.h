// The block-device ABI: Xen's public/io/blkif.h (libxen-dev), included as is for constants and the
// native (x86_64) layout, plus the x86_32 layout a 32-bit frontend puts on the ring.
//
// Which layout a ring carries is chosen by the frontend's `protocol` node (public/io/protocols.h:
// "x86_32-abi" or "x86_64-abi"; absent means the backend's native ABI). The two differ only in
// alignment: on i386 a uint64_t is 4-byte aligned, so requests shrink from 112 to 108 bytes and
// responses from 16 to 12. Both are declared here and proved against Xen's header below and in
// xpv/abi/blkif_abi_test.cc.
#pragma once

#include <cstddef>
#include <cstdint>

extern "C" {
#include <xen/io/blkif.h>
#include <xen/io/protocols.h>
}

namespace xpv::abi::blkif {

inline constexpr uint32_t kSectorSize = 512;  // sector numbers are always 512-byte units
inline constexpr uint32_t kSectorsPerPage = 4096 / kSectorSize;
inline constexpr uint32_t kMaxDirectSegments = BLKIF_MAX_SEGMENTS_PER_REQUEST;  // 11
inline constexpr uint32_t kMaxIndirectPages = BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST;
inline constexpr uint32_t kSegmentsPerIndirectPage = 4096 / sizeof(blkif_request_segment);  // 512

// A segment is {gref, first_sect, last_sect}: 8 bytes in both layouts (blkif_request_segment).
static_assert(sizeof(blkif_request_segment) == 8);

// The native layout, x86_64: Xen's own structs.
namespace x86_64 {
using Request = blkif_request;
using RequestDiscard = blkif_request_discard;
using RequestIndirect = blkif_request_indirect;
using Response = blkif_response;
}  // namespace x86_64

// The x86_32 layout: the same fields at i386 alignment (uint64_t aligned to 4).
namespace x86_32 {
#pragma pack(push, 4)
struct Request {
  uint8_t operation;
  uint8_t nr_segments;
  uint16_t handle;
  uint64_t id;
  uint64_t sector_number;
  blkif_request_segment seg[BLKIF_MAX_SEGMENTS_PER_REQUEST];
};
struct RequestDiscard {
  uint8_t operation;
  uint8_t flag;
  uint16_t handle;
  uint64_t id;
  uint64_t sector_number;
  uint64_t nr_sectors;
};
struct RequestIndirect {
  uint8_t operation;
  uint8_t indirect_op;
  uint16_t nr_segments;
  uint64_t id;
  uint64_t sector_number;
  uint16_t handle;
  uint16_t pad1;
  uint32_t indirect_grefs[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST];
  uint64_t pad2;  // "Make it 64 byte aligned on i386"
};
struct Response {
  uint64_t id;
  uint8_t operation;
  int16_t status;
};
#pragma pack(pop)
}  // namespace x86_32

// Sizes and offsets, x86_64 against Xen's header (compiled for x86_64 here).
static_assert(sizeof(x86_64::Request) == 112);
static_assert(offsetof(x86_64::Request, id) == 8);
static_assert(offsetof(x86_64::Request, sector_number) == 16);
static_assert(offsetof(x86_64::Request, seg) == 24);
static_assert(sizeof(x86_64::RequestIndirect) == 64);
static_assert(offsetof(x86_64::RequestIndirect, handle) == 24);
static_assert(offsetof(x86_64::RequestIndirect, indirect_grefs) == 28);
static_assert(sizeof(x86_64::RequestDiscard) == 32);
static_assert(sizeof(x86_64::Response) == 16);
static_assert(offsetof(x86_64::Response, status) == 10);

// x86_32, as i386 compilers lay out the same declarations (Linux's blkback common.h agrees).
static_assert(sizeof(x86_32::Request) == 108);
static_assert(offsetof(x86_32::Request, id) == 4);
static_assert(offsetof(x86_32::Request, sector_number) == 12);
static_assert(offsetof(x86_32::Request, seg) == 20);
static_assert(sizeof(x86_32::RequestIndirect) == 64);
static_assert(offsetof(x86_32::RequestIndirect, id) == 4);
static_assert(offsetof(x86_32::RequestIndirect, sector_number) == 12);
static_assert(offsetof(x86_32::RequestIndirect, handle) == 20);
static_assert(offsetof(x86_32::RequestIndirect, indirect_grefs) == 24);
static_assert(sizeof(x86_32::RequestDiscard) == 28);
static_assert(offsetof(x86_32::RequestDiscard, nr_sectors) == 20);
static_assert(sizeof(x86_32::Response) == 12);
static_assert(offsetof(x86_32::Response, status) == 10);

// Fields common to every request type sit at the same offset within a layout, so a consumer can
// read `operation` (offset 0) first and then copy the slot as the right struct.
static_assert(offsetof(x86_64::RequestDiscard, id) == offsetof(x86_64::Request, id));
static_assert(offsetof(x86_64::RequestIndirect, id) == offsetof(x86_64::Request, id));
static_assert(offsetof(x86_32::RequestDiscard, id) == offsetof(x86_32::Request, id));
static_assert(offsetof(x86_32::RequestIndirect, id) == offsetof(x86_32::Request, id));

enum class Protocol : uint8_t { kX86_64, kX86_32 };
inline constexpr const char* kProtocolX86_64 = XEN_IO_PROTO_ABI_X86_64;  // "x86_64-abi"
inline constexpr const char* kProtocolX86_32 = XEN_IO_PROTO_ABI_X86_32;  // "x86_32-abi"

}  // namespace xpv::abi::blkif
