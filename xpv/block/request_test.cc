// ParseRequest / ParseIndirectSegments / EncodeResponse, in both ring layouts. Rejection tests are
// named after what a hostile or buggy frontend tries.
#include "xpv/block/request.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace xpv::block {
namespace {

using abi::blkif::Protocol;
namespace x64 = abi::blkif::x86_64;
namespace x32 = abi::blkif::x86_32;

constexpr uint64_t kId = 0x1122334455667788;
constexpr uint64_t kDiskSectors = 2048;  // 1 MiB

struct Seg {
  uint32_t gref;
  uint8_t first;
  uint8_t last;
};

template <typename T>
std::vector<std::byte> ToSlot(const T& v, Protocol p) {
  std::vector<std::byte> slot(RequestSize(p), std::byte{0xEE});  // junk beyond the struct
  std::memcpy(slot.data(), &v, sizeof v);
  return slot;
}

template <typename R>
std::vector<std::byte> RwAs(Protocol p, uint8_t op, uint64_t sector, std::vector<Seg> segs,
                            int nr) {
  R r{};
  r.operation = op;
  r.nr_segments = static_cast<uint8_t>(nr >= 0 ? nr : static_cast<int>(segs.size()));
  r.handle = 7;
  r.id = kId;
  r.sector_number = sector;
  for (size_t i = 0; i < segs.size() && i < 11; ++i) {
    r.seg[i].gref = segs[i].gref;
    r.seg[i].first_sect = segs[i].first;
    r.seg[i].last_sect = segs[i].last;
  }
  return ToSlot(r, p);
}

// A read/write/flush slot; `nr` overrides nr_segments (to lie about it).
std::vector<std::byte> Rw(Protocol p, uint8_t op, uint64_t sector, std::vector<Seg> segs,
                          int nr = -1) {
  return p == Protocol::kX86_64 ? RwAs<x64::Request>(p, op, sector, segs, nr)
                                : RwAs<x32::Request>(p, op, sector, segs, nr);
}

template <typename R>
std::vector<std::byte> DiscardAs(Protocol p, uint64_t sector, uint64_t n, uint8_t flag) {
  R r{};
  r.operation = BLKIF_OP_DISCARD;
  r.flag = flag;
  r.id = kId;
  r.sector_number = sector;
  r.nr_sectors = n;
  return ToSlot(r, p);
}

std::vector<std::byte> Discard(Protocol p, uint64_t sector, uint64_t n, uint8_t flag = 0) {
  return p == Protocol::kX86_64 ? DiscardAs<x64::RequestDiscard>(p, sector, n, flag)
                                : DiscardAs<x32::RequestDiscard>(p, sector, n, flag);
}

template <typename R>
std::vector<std::byte> IndirectAs(Protocol p, uint8_t op, uint64_t sector, uint16_t nr) {
  R r{};
  r.operation = BLKIF_OP_INDIRECT;
  r.indirect_op = op;
  r.nr_segments = nr;
  r.id = kId;
  r.sector_number = sector;
  for (uint32_t i = 0; i < BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST; ++i) r.indirect_grefs[i] = 100 + i;
  return ToSlot(r, p);
}

std::vector<std::byte> Indirect(Protocol p, uint8_t op, uint64_t sector, uint16_t nr) {
  return p == Protocol::kX86_64 ? IndirectAs<x64::RequestIndirect>(p, op, sector, nr)
                                : IndirectAs<x32::RequestIndirect>(p, op, sector, nr);
}

// The bytes of indirect pages holding `segs`.
std::vector<std::byte> IndirectPages(const std::vector<Seg>& segs) {
  std::vector<std::byte> pages(((segs.size() + 511) / 512) * 4096);
  for (size_t i = 0; i < segs.size(); ++i) {
    blkif_request_segment s{};
    s.gref = segs[i].gref;
    s.first_sect = segs[i].first;
    s.last_sect = segs[i].last;
    std::memcpy(pages.data() + i * sizeof s, &s, sizeof s);
  }
  return pages;
}

RequestLimits Limits() {
  RequestLimits l;
  l.disk_sectors = kDiskSectors;
  l.max_indirect_segments = 256;
  l.discard = DiscardSupport::kDiscard;
  return l;
}

class RequestTest : public ::testing::TestWithParam<Protocol> {
 protected:
  Protocol p() const { return GetParam(); }
  Result<BlockRequest, Rejection> Parse(const std::vector<std::byte>& slot,
                                        const RequestLimits& limits = Limits()) {
    return ParseRequest(slot, p(), limits);
  }
};

// A refusal answers the request it refused: same id, the operation the response must carry.
void ExpectRejected(const Result<BlockRequest, Rejection>& r, uint8_t op, int code,
                    int16_t status = BLKIF_RSP_ERROR) {
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().id, kId);
  EXPECT_EQ(r.error().response_operation, op);
  EXPECT_EQ(r.error().error.code, code) << r.error().error.message;
  EXPECT_EQ(BlkifStatus(r.error().error), status);
}

TEST_P(RequestTest, ReadWithThreeSegments) {
  auto r = Parse(Rw(p(), BLKIF_OP_READ, 16, {{5, 0, 7}, {6, 2, 3}, {7, 7, 7}}));
  ASSERT_TRUE(r.has_value()) << r.error().error.message;
  EXPECT_EQ(r->id, kId);
  EXPECT_EQ(r->op, BlockOp::kRead);
  EXPECT_EQ(r->response_operation, BLKIF_OP_READ);
  EXPECT_EQ(r->sector, 16u);
  EXPECT_EQ(r->nr_sectors, 8u + 2 + 1);
  EXPECT_EQ(r->byte_offset(), 16u * 512);
  EXPECT_EQ(r->byte_length(), 11u * 512);
  ASSERT_EQ(r->segments.size(), 3u);
  EXPECT_EQ(r->segments[0].gref, GrantRef(5));
  EXPECT_EQ(r->segments[0].offset, 0);
  EXPECT_EQ(r->segments[0].length, 4096);
  EXPECT_EQ(r->segments[1].gref, GrantRef(6));
  EXPECT_EQ(r->segments[1].offset, 1024);
  EXPECT_EQ(r->segments[1].length, 1024);
  EXPECT_EQ(r->segments[2].offset, 3584);
  EXPECT_EQ(r->segments[2].length, 512);
  EXPECT_FALSE(r->is_indirect());
}

TEST_P(RequestTest, WriteWithElevenSegments) {
  std::vector<Seg> segs;
  for (uint32_t i = 0; i < 11; ++i) segs.push_back({i + 1, 0, 7});
  auto r = Parse(Rw(p(), BLKIF_OP_WRITE, 0, segs));
  ASSERT_TRUE(r.has_value()) << r.error().error.message;
  EXPECT_EQ(r->op, BlockOp::kWrite);
  EXPECT_EQ(r->nr_sectors, 88u);
  EXPECT_EQ(r->segments.size(), 11u);
}

TEST_P(RequestTest, RangeEndingAtEndOfDiskIsAccepted) {
  auto r = Parse(Rw(p(), BLKIF_OP_READ, kDiskSectors - 8, {{1, 0, 7}}));
  ASSERT_TRUE(r.has_value()) << r.error().error.message;
}

TEST_P(RequestTest, FlushWithoutSegments) {
  auto r = Parse(Rw(p(), BLKIF_OP_FLUSH_DISKCACHE, 0xFFFFFFFFFFFFull, {}));
  ASSERT_TRUE(r.has_value()) << r.error().error.message;
  EXPECT_EQ(r->op, BlockOp::kFlush);
  EXPECT_EQ(r->response_operation, BLKIF_OP_FLUSH_DISKCACHE);
  EXPECT_EQ(r->nr_sectors, 0u);
  EXPECT_TRUE(r->segments.empty());
}

TEST_P(RequestTest, FlushWithSegmentsCarriesTheWrite) {
  auto r = Parse(Rw(p(), BLKIF_OP_FLUSH_DISKCACHE, 8, {{3, 0, 7}}));
  ASSERT_TRUE(r.has_value()) << r.error().error.message;
  EXPECT_EQ(r->op, BlockOp::kFlush);
  EXPECT_EQ(r->nr_sectors, 8u);
  EXPECT_EQ(r->segments.size(), 1u);
}

TEST_P(RequestTest, FlushWithSegmentsPastEndOfDisk) {
  ExpectRejected(Parse(Rw(p(), BLKIF_OP_FLUSH_DISKCACHE, kDiskSectors, {{3, 0, 0}})),
                 BLKIF_OP_FLUSH_DISKCACHE, ERANGE);
}

TEST_P(RequestTest, DiscardRange) {
  auto r = Parse(Discard(p(), 100, 200));
  ASSERT_TRUE(r.has_value()) << r.error().error.message;
  EXPECT_EQ(r->op, BlockOp::kDiscard);
  EXPECT_EQ(r->response_operation, BLKIF_OP_DISCARD);
  EXPECT_EQ(r->sector, 100u);
  EXPECT_EQ(r->nr_sectors, 200u);
  EXPECT_EQ(r->discard_kind, DiscardKind::kNormal);
}

TEST_P(RequestTest, SecureDiscardWhenAdvertised) {
  RequestLimits l = Limits();
  l.discard = DiscardSupport::kDiscardSecure;
  auto r = Parse(Discard(p(), 0, 8, BLKIF_DISCARD_SECURE), l);
  ASSERT_TRUE(r.has_value()) << r.error().error.message;
  EXPECT_EQ(r->discard_kind, DiscardKind::kSecure);
}

TEST_P(RequestTest, SecureDiscardWhenNotAdvertised) {
  ExpectRejected(Parse(Discard(p(), 0, 8, BLKIF_DISCARD_SECURE)), BLKIF_OP_DISCARD, EOPNOTSUPP,
                 BLKIF_RSP_EOPNOTSUPP);
}

TEST_P(RequestTest, DiscardWhenNotAdvertised) {
  RequestLimits l = Limits();
  l.discard = DiscardSupport::kNone;
  ExpectRejected(Parse(Discard(p(), 0, 8), l), BLKIF_OP_DISCARD, EOPNOTSUPP, BLKIF_RSP_EOPNOTSUPP);
}

TEST_P(RequestTest, DiscardPastEndOfDisk) {
  ExpectRejected(Parse(Discard(p(), kDiskSectors - 1, 2)), BLKIF_OP_DISCARD, ERANGE);
}

TEST_P(RequestTest, DiscardLengthOverflowsSector) {
  ExpectRejected(Parse(Discard(p(), 8, ~uint64_t{0} - 3)), BLKIF_OP_DISCARD, ERANGE);
}

TEST_P(RequestTest, DiscardOfZeroSectors) {
  ExpectRejected(Parse(Discard(p(), 8, 0)), BLKIF_OP_DISCARD, EINVAL);
}

TEST_P(RequestTest, DiscardOnReadOnlyDisk) {
  RequestLimits l = Limits();
  l.access = Access::kReadOnly;
  ExpectRejected(Parse(Discard(p(), 0, 8), l), BLKIF_OP_DISCARD, EROFS);
}

TEST_P(RequestTest, IndirectReadThenItsSegments) {
  auto r = Parse(Indirect(p(), BLKIF_OP_READ, 64, 3));
  ASSERT_TRUE(r.has_value()) << r.error().error.message;
  EXPECT_TRUE(r->is_indirect());
  EXPECT_EQ(r->op, BlockOp::kRead);
  EXPECT_EQ(r->response_operation, BLKIF_OP_READ);  // indirect_op, as blkfront expects
  EXPECT_EQ(r->indirect_segments, 3);
  ASSERT_EQ(r->indirect_pages.size(), 1u);
  EXPECT_EQ(r->indirect_pages[0], GrantRef(100));
  EXPECT_TRUE(r->segments.empty());

  auto pages = IndirectPages({{9, 0, 7}, {10, 0, 7}, {11, 4, 5}});
  auto s = ParseIndirectSegments(*r, pages, Limits());
  ASSERT_TRUE(s.has_value()) << s.error().error.message;
  ASSERT_EQ(r->segments.size(), 3u);
  EXPECT_EQ(r->segments[2].gref, GrantRef(11));
  EXPECT_EQ(r->segments[2].offset, 2048);
  EXPECT_EQ(r->segments[2].length, 1024);
  EXPECT_EQ(r->nr_sectors, 18u);
}

TEST_P(RequestTest, IndirectWriteSpanningTwoPages) {
  RequestLimits l = Limits();
  l.max_indirect_segments = 1024;
  auto r = Parse(Indirect(p(), BLKIF_OP_WRITE, 0, 513), l);
  ASSERT_TRUE(r.has_value()) << r.error().error.message;
  EXPECT_EQ(r->op, BlockOp::kWrite);
  ASSERT_EQ(r->indirect_pages.size(), 2u);
  EXPECT_EQ(r->indirect_pages[1], GrantRef(101));
  std::vector<Seg> segs(513, Seg{1, 0, 0});
  auto pages = IndirectPages(segs);
  ASSERT_TRUE(ParseIndirectSegments(*r, pages, l).has_value());
  EXPECT_EQ(r->nr_sectors, 513u);
}

TEST_P(RequestTest, IndirectSegmentCountAboveAdvertised) {
  ExpectRejected(Parse(Indirect(p(), BLKIF_OP_READ, 0, 257)), BLKIF_OP_READ, EINVAL);
}

TEST_P(RequestTest, IndirectSegmentCountZero) {
  ExpectRejected(Parse(Indirect(p(), BLKIF_OP_READ, 0, 0)), BLKIF_OP_READ, EINVAL);
}

TEST_P(RequestTest, IndirectWhenNotAdvertised) {
  RequestLimits l = Limits();
  l.max_indirect_segments = 0;
  ExpectRejected(Parse(Indirect(p(), BLKIF_OP_READ, 0, 1), l), BLKIF_OP_READ, EINVAL);
}

TEST_P(RequestTest, IndirectOperationNeitherReadNorWrite) {
  ExpectRejected(Parse(Indirect(p(), BLKIF_OP_DISCARD, 0, 1)), BLKIF_OP_DISCARD, EINVAL);
  ExpectRejected(Parse(Indirect(p(), BLKIF_OP_INDIRECT, 0, 1)), BLKIF_OP_INDIRECT, EINVAL);
}

TEST_P(RequestTest, IndirectWriteToReadOnlyDisk) {
  RequestLimits l = Limits();
  l.access = Access::kReadOnly;
  ExpectRejected(Parse(Indirect(p(), BLKIF_OP_WRITE, 0, 1), l), BLKIF_OP_WRITE, EROFS);
}

TEST_P(RequestTest, GarbageInIndirectPage) {
  auto r = Parse(Indirect(p(), BLKIF_OP_READ, 0, 4));
  ASSERT_TRUE(r.has_value());
  // Fine, fine, then last_sect 200 in the third segment.
  auto pages = IndirectPages({{1, 0, 7}, {2, 0, 7}, {3, 0, 200}, {4, 0, 7}});
  auto s = ParseIndirectSegments(*r, pages, Limits());
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().id, kId);
  EXPECT_EQ(s.error().response_operation, BLKIF_OP_READ);
  EXPECT_EQ(BlkifStatus(s.error().error), BLKIF_RSP_ERROR);
  EXPECT_TRUE(r->segments.empty());  // nothing half-filled

  auto r2 = Parse(Indirect(p(), BLKIF_OP_READ, 0, 2));
  ASSERT_TRUE(r2.has_value());
  auto pages2 = IndirectPages({{1, 6, 2}, {2, 0, 7}});  // last before first
  EXPECT_FALSE(ParseIndirectSegments(*r2, pages2, Limits()).has_value());
}

TEST_P(RequestTest, IndirectSegmentsRunPastEndOfDisk) {
  auto r = Parse(Indirect(p(), BLKIF_OP_READ, kDiskSectors - 8, 2));
  ASSERT_TRUE(r.has_value());
  auto pages = IndirectPages({{1, 0, 7}, {2, 0, 0}});
  auto s = ParseIndirectSegments(*r, pages, Limits());
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().error.code, ERANGE);
}

TEST_P(RequestTest, SegmentCountZeroForRead) {
  ExpectRejected(Parse(Rw(p(), BLKIF_OP_READ, 0, {})), BLKIF_OP_READ, EINVAL);
}

TEST_P(RequestTest, SegmentCountZeroForWrite) {
  ExpectRejected(Parse(Rw(p(), BLKIF_OP_WRITE, 0, {})), BLKIF_OP_WRITE, EINVAL);
}

TEST_P(RequestTest, SegmentCountAboveEleven) {
  ExpectRejected(Parse(Rw(p(), BLKIF_OP_READ, 0, {{1, 0, 7}}, 12)), BLKIF_OP_READ, EINVAL);
  ExpectRejected(Parse(Rw(p(), BLKIF_OP_WRITE, 0, {{1, 0, 7}}, 255)), BLKIF_OP_WRITE, EINVAL);
}

TEST_P(RequestTest, LastSectorBeforeFirst) {
  ExpectRejected(Parse(Rw(p(), BLKIF_OP_READ, 0, {{1, 0, 7}, {2, 5, 4}})), BLKIF_OP_READ, EINVAL);
}

TEST_P(RequestTest, LastSectorBeyondPage) {
  ExpectRejected(Parse(Rw(p(), BLKIF_OP_WRITE, 0, {{1, 0, 8}})), BLKIF_OP_WRITE, EINVAL);
  ExpectRejected(Parse(Rw(p(), BLKIF_OP_WRITE, 0, {{1, 255, 255}})), BLKIF_OP_WRITE, EINVAL);
}

TEST_P(RequestTest, RangePastEndOfDisk) {
  ExpectRejected(Parse(Rw(p(), BLKIF_OP_READ, kDiskSectors - 7, {{1, 0, 7}})), BLKIF_OP_READ,
                 ERANGE);
  ExpectRejected(Parse(Rw(p(), BLKIF_OP_READ, kDiskSectors, {{1, 0, 0}})), BLKIF_OP_READ, ERANGE);
}

TEST_P(RequestTest, SectorNumberOverflowsWithLength) {
  RequestLimits l = Limits();
  l.disk_sectors = ~uint64_t{0};  // so only the overflow check can catch it
  ExpectRejected(Parse(Rw(p(), BLKIF_OP_READ, ~uint64_t{0} - 3, {{1, 0, 7}}), l), BLKIF_OP_READ,
                 ERANGE);
}

TEST_P(RequestTest, WriteToReadOnlyDisk) {
  RequestLimits l = Limits();
  l.access = Access::kReadOnly;
  ExpectRejected(Parse(Rw(p(), BLKIF_OP_WRITE, 0, {{1, 0, 7}}), l), BLKIF_OP_WRITE, EROFS);
  ExpectRejected(Parse(Rw(p(), BLKIF_OP_FLUSH_DISKCACHE, 0, {}), l), BLKIF_OP_FLUSH_DISKCACHE,
                 EROFS);
  EXPECT_TRUE(Parse(Rw(p(), BLKIF_OP_READ, 0, {{1, 0, 7}}), l).has_value());
}

TEST_P(RequestTest, UnknownOperation) {
  ExpectRejected(Parse(Rw(p(), 0x77, 0, {{1, 0, 7}})), 0x77, EINVAL);
  ExpectRejected(Parse(Rw(p(), BLKIF_OP_RESERVED_1, 0, {{1, 0, 7}})), BLKIF_OP_RESERVED_1, EINVAL);
}

TEST_P(RequestTest, BarrierIsNotSupported) {
  ExpectRejected(Parse(Rw(p(), BLKIF_OP_WRITE_BARRIER, 0, {{1, 0, 7}})), BLKIF_OP_WRITE_BARRIER,
                 EOPNOTSUPP, BLKIF_RSP_EOPNOTSUPP);
}

TEST_P(RequestTest, MisalignedSectorOn4KDisk) {
  RequestLimits l = Limits();
  l.logical_sector_size = 4096;
  ExpectRejected(Parse(Rw(p(), BLKIF_OP_READ, 4, {{1, 0, 7}}), l), BLKIF_OP_READ, EINVAL);
  ExpectRejected(Parse(Indirect(p(), BLKIF_OP_READ, 4, 1), l), BLKIF_OP_READ, EINVAL);
  ExpectRejected(Parse(Discard(p(), 4, 8), l), BLKIF_OP_DISCARD, EINVAL);
}

TEST_P(RequestTest, PartialPageSegmentOn4KDisk) {
  RequestLimits l = Limits();
  l.logical_sector_size = 4096;
  ExpectRejected(Parse(Rw(p(), BLKIF_OP_WRITE, 8, {{1, 0, 7}, {2, 0, 3}}), l), BLKIF_OP_WRITE,
                 EINVAL);
  ExpectRejected(Parse(Discard(p(), 8, 12), l), BLKIF_OP_DISCARD, EINVAL);
  EXPECT_TRUE(Parse(Rw(p(), BLKIF_OP_WRITE, 8, {{1, 0, 7}, {2, 0, 7}}), l).has_value());
}

TEST_P(RequestTest, ResponseLayout) {
  std::vector<std::byte> slot(16, std::byte{0xAB});
  EncodeResponse(p(), kId, BLKIF_OP_WRITE, BLKIF_RSP_EOPNOTSUPP, slot);
  if (p() == Protocol::kX86_64) {
    ASSERT_EQ(ResponseSize(p()), 16u);
    x64::Response r;
    std::memcpy(&r, slot.data(), sizeof r);
    EXPECT_EQ(r.id, kId);
    EXPECT_EQ(r.operation, BLKIF_OP_WRITE);
    EXPECT_EQ(r.status, BLKIF_RSP_EOPNOTSUPP);
    for (size_t i : {9, 12, 13, 14, 15}) EXPECT_EQ(slot[i], std::byte{0}) << i;
  } else {
    ASSERT_EQ(ResponseSize(p()), 12u);
    x32::Response r;
    std::memcpy(&r, slot.data(), sizeof r);
    EXPECT_EQ(r.id, kId);
    EXPECT_EQ(r.operation, BLKIF_OP_WRITE);
    EXPECT_EQ(r.status, BLKIF_RSP_EOPNOTSUPP);
    EXPECT_EQ(slot[9], std::byte{0});
    for (size_t i = 12; i < 16; ++i) EXPECT_EQ(slot[i], std::byte{0xAB}) << "wrote past 12";
  }
  uint16_t status;
  std::memcpy(&status, slot.data() + 10, 2);  // same offset in both layouts
  EXPECT_EQ(static_cast<int16_t>(status), BLKIF_RSP_EOPNOTSUPP);
}

INSTANTIATE_TEST_SUITE_P(Layouts, RequestTest,
                         ::testing::Values(Protocol::kX86_64, Protocol::kX86_32),
                         [](const auto& info) {
                           return info.param == Protocol::kX86_64 ? "x86_64" : "x86_32";
                         });

TEST(RequestSizes, SlotSizesPerLayout) {
  EXPECT_EQ(RequestSize(Protocol::kX86_64), 112u);
  EXPECT_EQ(RequestSize(Protocol::kX86_32), 108u);
}

TEST(BlkifStatusTest, OneMappingForEveryError) {
  EXPECT_EQ(BlkifStatus(0), BLKIF_RSP_OKAY);
  EXPECT_EQ(BlkifStatus(EOPNOTSUPP), BLKIF_RSP_EOPNOTSUPP);
  EXPECT_EQ(BlkifStatus(-EOPNOTSUPP), BLKIF_RSP_EOPNOTSUPP);  // a disk completion's result
  EXPECT_EQ(BlkifStatus(-EIO), BLKIF_RSP_ERROR);
  EXPECT_EQ(BlkifStatus(EINVAL), BLKIF_RSP_ERROR);
  EXPECT_EQ(BlkifStatus(Err(EROFS)), BLKIF_RSP_ERROR);
}

}  // namespace
}  // namespace xpv::block
