#include "xpv/block/request.h"

#include <algorithm>
#include <cstring>

namespace xpv::block {

namespace blkif = abi::blkif;

namespace {

struct X86_64 {
  using Request = blkif::x86_64::Request;
  using RequestDiscard = blkif::x86_64::RequestDiscard;
  using RequestIndirect = blkif::x86_64::RequestIndirect;
  using Response = blkif::x86_64::Response;
};
struct X86_32 {
  using Request = blkif::x86_32::Request;
  using RequestDiscard = blkif::x86_32::RequestDiscard;
  using RequestIndirect = blkif::x86_32::RequestIndirect;
  using Response = blkif::x86_32::Response;
};

// Every request type fits in the slot that holds a blkif_request.
static_assert(sizeof(X86_64::RequestDiscard) <= sizeof(X86_64::Request));
static_assert(sizeof(X86_64::RequestIndirect) <= sizeof(X86_64::Request));
static_assert(sizeof(X86_32::RequestDiscard) <= sizeof(X86_32::Request));
static_assert(sizeof(X86_32::RequestIndirect) <= sizeof(X86_32::Request));

template <typename T>
T Load(std::span<const std::byte> bytes, size_t offset = 0) {
  XPV_CHECK(offset + sizeof(T) <= bytes.size());
  T v;
  // SAFETY: `bytes` is the caller's private copy (never guest memory); T is a plain ABI struct.
  std::memcpy(&v, bytes.data() + offset, sizeof v);
  return v;
}

Rejection Reject(uint64_t id, uint8_t operation, int code, std::string_view message) {
  return Rejection{id, operation, Err(code, message)};
}

// Sectors per logical block: 1 for 512-byte disks, 8 for 4 KiB ones.
uint64_t SectorsPerBlock(const RequestLimits& limits) {
  return limits.logical_sector_size / blkif::kSectorSize;
}

// [sector, sector + nr_sectors) must lie inside the disk and start on a logical block.
Status CheckRange(uint64_t sector, uint64_t nr_sectors, const RequestLimits& limits) {
  uint64_t end = 0;
  if (__builtin_add_overflow(sector, nr_sectors, &end)) {
    return Err(ERANGE, "sector_number + length overflows");
  }
  if (end > limits.disk_sectors) return Err(ERANGE, "range past the end of the disk");
  if (sector % SectorsPerBlock(limits) != 0) {
    return Err(EINVAL, "sector_number not aligned to the logical sector size");
  }
  return Ok();
}

// Checks `n` blkif_request_segments held in `bytes` (a private copy), then the request's whole
// range, and only then fills request.segments and request.nr_sectors.
Status TakeSegments(std::span<const std::byte> bytes, size_t n, const RequestLimits& limits,
                    BlockRequest& request) {
  XPV_CHECK(bytes.size() >= n * sizeof(blkif_request_segment));
  const uint64_t per_block = SectorsPerBlock(limits);
  uint64_t total = 0;  // at most 4096 segments * 8 sectors: no overflow
  for (size_t i = 0; i < n; ++i) {
    const auto s = Load<blkif_request_segment>(bytes, i * sizeof(blkif_request_segment));
    if (s.last_sect < s.first_sect) return Err(EINVAL, "segment last_sect before first_sect");
    if (s.last_sect >= blkif::kSectorsPerPage) return Err(EINVAL, "segment last_sect beyond page");
    const uint64_t nsec = uint64_t{s.last_sect} - s.first_sect + 1;
    // Linux: "Misaligned I/O request"; with 4 KiB sectors this means whole pages.
    if (nsec % per_block != 0) return Err(EINVAL, "segment not whole logical sectors");
    total += nsec;
  }
  XPV_TRY(CheckRange(request.sector, total, limits));

  request.nr_sectors = total;
  request.segments.clear();
  request.segments.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const auto s = Load<blkif_request_segment>(bytes, i * sizeof(blkif_request_segment));
    request.segments.push_back(
        Segment{GrantRef(s.gref), static_cast<uint16_t>(s.first_sect * blkif::kSectorSize),
                static_cast<uint16_t>((s.last_sect - s.first_sect + 1) * blkif::kSectorSize)});
  }
  return Ok();
}

template <typename L>
Result<BlockRequest, Rejection> ParseReadWrite(std::span<const std::byte> slot,
                                               const RequestLimits& limits) {
  const auto r = Load<typename L::Request>(slot);
  BlockRequest out;
  out.id = r.id;
  out.response_operation = r.operation;
  out.sector = r.sector_number;
  const auto reject = [&](int code, std::string_view m) {
    return Reject(r.id, r.operation, code, m);
  };
  switch (r.operation) {
    case BLKIF_OP_READ:
      out.op = BlockOp::kRead;
      break;
    case BLKIF_OP_WRITE:
      out.op = BlockOp::kWrite;
      break;
    default:
      out.op = BlockOp::kFlush;
      break;
  }
  if (out.op != BlockOp::kRead && limits.access == Access::kReadOnly) {
    return reject(EROFS, "write or flush to a read-only disk");
  }
  // Linux accepts zero segments only for a flush; a flush with segments is a write after it.
  if (r.nr_segments == 0 && out.op != BlockOp::kFlush) return reject(EINVAL, "no segments");
  if (r.nr_segments > blkif::kMaxDirectSegments) return reject(EINVAL, "more than 11 segments");
  if (r.nr_segments == 0) return out;  // a bare flush: no range to check
  const auto seg_bytes = std::as_bytes(std::span(r.seg, r.nr_segments));
  if (auto s = TakeSegments(seg_bytes, r.nr_segments, limits, out); !s) {
    return Rejection{r.id, r.operation, s.error()};
  }
  return out;
}

template <typename L>
Result<BlockRequest, Rejection> ParseDiscard(std::span<const std::byte> slot,
                                             const RequestLimits& limits) {
  const auto r = Load<typename L::RequestDiscard>(slot);
  const auto reject = [&](int code, std::string_view m) {
    return Reject(r.id, r.operation, code, m);
  };
  if (limits.discard == DiscardSupport::kNone) return reject(EOPNOTSUPP, "discard not advertised");
  const bool secure = (r.flag & BLKIF_DISCARD_SECURE) != 0;
  if (secure && limits.discard != DiscardSupport::kDiscardSecure) {
    return reject(EOPNOTSUPP, "secure discard not advertised");
  }
  if (limits.access == Access::kReadOnly) return reject(EROFS, "discard on a read-only disk");
  if (r.nr_sectors == 0) return reject(EINVAL, "discard of no sectors");
  if (auto s = CheckRange(r.sector_number, r.nr_sectors, limits); !s) {
    return Rejection{r.id, r.operation, s.error()};
  }
  if (r.nr_sectors % SectorsPerBlock(limits) != 0) {
    return reject(EINVAL, "discard length not whole logical sectors");
  }
  BlockRequest out;
  out.id = r.id;
  out.response_operation = r.operation;
  out.op = BlockOp::kDiscard;
  out.sector = r.sector_number;
  out.nr_sectors = r.nr_sectors;
  out.discard_kind = secure ? DiscardKind::kSecure : DiscardKind::kNormal;
  return out;
}

template <typename L>
Result<BlockRequest, Rejection> ParseIndirect(std::span<const std::byte> slot,
                                              const RequestLimits& limits) {
  const auto r = Load<typename L::RequestIndirect>(slot);
  // Linux answers with indirect_op, also when refusing it.
  const auto reject = [&](int code, std::string_view m) {
    return Reject(r.id, r.indirect_op, code, m);
  };
  if (limits.max_indirect_segments == 0) return reject(EINVAL, "indirect not advertised");
  if (r.indirect_op != BLKIF_OP_READ && r.indirect_op != BLKIF_OP_WRITE) {
    return reject(EINVAL, "indirect_op is neither read nor write");
  }
  if (r.indirect_op == BLKIF_OP_WRITE && limits.access == Access::kReadOnly) {
    return reject(EROFS, "write to a read-only disk");
  }
  if (r.nr_segments == 0) return reject(EINVAL, "no segments");
  if (r.nr_segments > limits.max_indirect_segments) {
    return reject(EINVAL, "more indirect segments than advertised");
  }
  const size_t pages = (size_t{r.nr_segments} + blkif::kSegmentsPerIndirectPage - 1) /
                       blkif::kSegmentsPerIndirectPage;
  XPV_CHECK(pages <= blkif::kMaxIndirectPages);  // max_indirect_segments is checked on entry
  // Early check of the start; the range as a whole once the segments are known.
  if (r.sector_number % SectorsPerBlock(limits) != 0) {
    return reject(EINVAL, "sector_number not aligned to the logical sector size");
  }
  BlockRequest out;
  out.id = r.id;
  out.response_operation = r.indirect_op;
  out.op = r.indirect_op == BLKIF_OP_READ ? BlockOp::kRead : BlockOp::kWrite;
  out.sector = r.sector_number;
  out.indirect_segments = r.nr_segments;
  out.indirect_pages.reserve(pages);
  for (size_t i = 0; i < pages; ++i) out.indirect_pages.push_back(GrantRef(r.indirect_grefs[i]));
  return out;
}

template <typename L>
Result<BlockRequest, Rejection> Parse(std::span<const std::byte> slot,
                                      const RequestLimits& limits) {
  XPV_CHECK(slot.size() >= sizeof(typename L::Request));
  XPV_CHECK(limits.logical_sector_size == 512 || limits.logical_sector_size == 4096);
  XPV_CHECK(limits.max_indirect_segments <=
            blkif::kMaxIndirectPages * blkif::kSegmentsPerIndirectPage);
  const auto operation = Load<uint8_t>(slot, offsetof(typename L::Request, operation));
  switch (operation) {
    case BLKIF_OP_READ:
    case BLKIF_OP_WRITE:
    case BLKIF_OP_FLUSH_DISKCACHE:
      return ParseReadWrite<L>(slot, limits);
    case BLKIF_OP_DISCARD:
      return ParseDiscard<L>(slot, limits);
    case BLKIF_OP_INDIRECT:
      return ParseIndirect<L>(slot, limits);
    default:
      break;
  }
  const auto id = Load<uint64_t>(slot, offsetof(typename L::Request, id));
  // Barriers were dropped from Linux's block layer; blkback no longer advertises them.
  if (operation == BLKIF_OP_WRITE_BARRIER) {
    return Reject(id, operation, EOPNOTSUPP, "write barrier not supported");
  }
  return Reject(id, operation, EINVAL, "unknown operation");
}

}  // namespace

size_t RequestSize(blkif::Protocol protocol) {
  return protocol == blkif::Protocol::kX86_64 ? sizeof(X86_64::Request) : sizeof(X86_32::Request);
}

size_t ResponseSize(blkif::Protocol protocol) {
  return protocol == blkif::Protocol::kX86_64 ? sizeof(X86_64::Response) : sizeof(X86_32::Response);
}

Result<BlockRequest, Rejection> ParseRequest(std::span<const std::byte> slot,
                                             blkif::Protocol protocol,
                                             const RequestLimits& limits) {
  return protocol == blkif::Protocol::kX86_64 ? Parse<X86_64>(slot, limits)
                                              : Parse<X86_32>(slot, limits);
}

Result<void, Rejection> ParseIndirectSegments(BlockRequest& request,
                                              std::span<const std::byte> indirect_pages,
                                              const RequestLimits& limits) {
  XPV_CHECK(request.is_indirect() && request.segments.empty());
  if (auto s = TakeSegments(indirect_pages, request.indirect_segments, limits, request); !s) {
    return Rejection{request.id, request.response_operation, s.error()};
  }
  return {};
}

int16_t BlkifStatus(int error_code) {
  if (error_code == 0) return BLKIF_RSP_OKAY;
  if (error_code == EOPNOTSUPP || error_code == -EOPNOTSUPP) return BLKIF_RSP_EOPNOTSUPP;
  return BLKIF_RSP_ERROR;
}

void EncodeResponse(blkif::Protocol protocol, uint64_t id, uint8_t operation, int16_t status,
                    std::span<std::byte> slot) {
  const size_t size = ResponseSize(protocol);
  XPV_CHECK(slot.size() >= size);
  // Field by field over a zeroed slot, so no padding byte of ours reaches the guest.
  std::memset(slot.data(), 0, size);
  const auto put = [&](size_t offset, const auto& v) {
    std::memcpy(slot.data() + offset, &v, sizeof v);
  };
  if (protocol == blkif::Protocol::kX86_64) {
    put(offsetof(X86_64::Response, id), id);
    put(offsetof(X86_64::Response, operation), operation);
    put(offsetof(X86_64::Response, status), status);
  } else {
    put(offsetof(X86_32::Response, id), id);
    put(offsetof(X86_32::Response, operation), operation);
    put(offsetof(X86_32::Response, status), status);
  }
}

}  // namespace xpv::block
