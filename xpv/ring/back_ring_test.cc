// The back ring against a hostile frontend that writes the shared header and slots as it likes.
#include "xpv/ring/back_ring.h"

#include <gtest/gtest.h>

#include <vector>

#include "xpv/abi/blkif.h"
#include "xpv/ring/front_ring.h"
#include "xpv/ring/testing/test_pages.h"

namespace xpv::ring {
namespace {

using testing::PageLayout;
using testing::TestPages;

struct Req {
  uint64_t id;
  uint32_t op;
  uint32_t len;
  uint8_t body[48];
};
struct Rsp {
  uint64_t id;
  int32_t status;
  uint32_t pad;
};
using Ring = BackRing<Req, Rsp>;
constexpr size_t kSlot = Ring::kSlotSize;

// A frontend that writes the ring directly, honestly or not.
class HostileFront {
 public:
  explicit HostileFront(TestPages& pages) : pages_(pages) {}
  void WriteRequest(uint32_t ring_size, uint32_t idx, uint64_t id) {
    Req q{};
    q.id = id;
    q.op = 1;
    pages_.WriteAt(kRingHeaderSize + (idx & (ring_size - 1)) * kSlot, &q, sizeof q);
  }
  void SetReqProd(uint32_t v) { pages_.SetIndex(0, v); }
  uint32_t rsp_prod() const { return pages_.Index(8); }
  uint32_t req_event() const { return pages_.Index(4); }

 private:
  TestPages& pages_;
};

class BackRingTest : public ::testing::Test {
 protected:
  void Init(size_t pages, PageLayout layout = PageLayout::kContiguous, uint32_t start = 0) {
    pages_ = std::make_unique<TestPages>(pages, layout);
    pages_->SetIndex(0, start);
    pages_->SetIndex(4, start + 1);
    pages_->SetIndex(8, start);
    pages_->SetIndex(12, start + 1);
    memory_ = std::make_unique<DirectRingMemory>(pages_->pages());
    auto r = Ring::Create(*memory_, start);
    ASSERT_TRUE(r.has_value());
    ring_.emplace(std::move(*r));
    front_.emplace(*pages_);
  }
  // The frontend publishes n honest requests from `from`.
  void Produce(uint32_t from, uint32_t n, uint64_t first_id = 100) {
    for (uint32_t i = 0; i < n; ++i) front_->WriteRequest(ring_->size(), from + i, first_id + i);
    front_->SetReqProd(from + n);
  }
  std::unique_ptr<TestPages> pages_;
  std::unique_ptr<DirectRingMemory> memory_;
  std::optional<Ring> ring_;
  std::optional<HostileFront> front_;
};

TEST_F(BackRingTest, TakesPublishedRequestsInOrderAndAnswers) {
  Init(1);
  Produce(0, 5);
  Req batch[8];
  auto n = ring_->TakeRequests(batch);
  ASSERT_TRUE(n.has_value());
  ASSERT_EQ(*n, 5u);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(batch[i].id, 100 + i);
  for (size_t i = 0; i < 5; ++i) ring_->PutResponse(Rsp{batch[i].id, 0, 0});
  auto notify = ring_->PushResponses();
  ASSERT_TRUE(notify.has_value());
  EXPECT_TRUE(*notify) << "rsp_event is 1: the frontend waits for the first response";
  EXPECT_EQ(front_->rsp_prod(), 5u);
  // Nothing more staged: no notification, nothing written.
  EXPECT_FALSE(*ring_->PushResponses());
}

TEST_F(BackRingTest, LyingProducerIndexIsRejected) {
  Init(1);
  Produce(0, 3);
  front_->SetReqProd(0x80000000u);  // claims two billion requests
  Req batch[64];
  auto n = ring_->TakeRequests(batch);
  ASSERT_FALSE(n.has_value());
  EXPECT_EQ(n.error().code, EPROTO);
  EXPECT_TRUE(ring_->broken());
  EXPECT_EQ(ring_->req_cons(), 0u) << "nothing past the lie was consumed";
  // The ring refuses all work until reset, even once the frontend behaves again.
  front_->SetReqProd(3);
  EXPECT_FALSE(ring_->TakeRequests(batch).has_value());
  EXPECT_FALSE(ring_->PushResponses().has_value());
  EXPECT_FALSE(ring_->FinalCheckForRequests().has_value());
  ring_->Reset(0);
  auto again = ring_->TakeRequests(batch);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, 3u);
}

TEST_F(BackRingTest, ProducerIndexOneBeyondTheRingIsRejected) {
  Init(1);
  Produce(0, ring_->size());
  front_->SetReqProd(ring_->size() + 1);
  Req batch[1];
  EXPECT_EQ(ring_->TakeRequests(batch).error().code, EPROTO);
}

TEST_F(BackRingTest, LyingProducerIndexIsRejectedByFinalCheck) {
  Init(1);
  front_->SetReqProd(0xFFFFFFF0u);  // "behind" us: as unsigned distance, far ahead
  auto w = ring_->FinalCheckForRequests();
  ASSERT_FALSE(w.has_value());
  EXPECT_EQ(w.error().code, EPROTO);
}

TEST_F(BackRingTest, ProducerRewritesSlotAfterConsumeHasNoEffect) {
  Init(1);
  Produce(0, 2);
  Req batch[4];
  ASSERT_EQ(*ring_->TakeRequests(batch), 2u);
  // Double fetch: the frontend rewrites the slots after the backend copied them.
  front_->WriteRequest(ring_->size(), 0, 0xBAD);
  front_->WriteRequest(ring_->size(), 1, 0xBAD);
  EXPECT_EQ(batch[0].id, 100u);
  EXPECT_EQ(batch[1].id, 101u);
  // And they are not taken again: the consumer index moved past them.
  Req more[4];
  EXPECT_EQ(*ring_->TakeRequests(more), 0u);
}

// A RingMemory that records each byte range read, to prove every request slot is fetched once.
class RecordingMemory final : public RingMemory {
 public:
  explicit RecordingMemory(RingMemory& inner) : inner_(inner) {}
  size_t page_count() const override { return inner_.page_count(); }
  Status Read(RingIndices& indices, std::span<const RingRead> reads) override {
    ++read_calls;
    for (const auto& r : reads) read_offsets.push_back(r.offset);
    return inner_.Read(indices, reads);
  }
  Status Publish(std::span<const RingWrite> writes, RingIndex index, uint32_t value,
                 RingIndices& after) override {
    ++publish_calls;
    return inner_.Publish(writes, index, value, after);
  }
  RingMemory& inner_;
  std::vector<size_t> read_offsets;
  int read_calls = 0;
  int publish_calls = 0;
};

TEST_F(BackRingTest, EachBatchIsOneReadOfIndexAndSlots) {
  Init(1);
  RecordingMemory rec(*memory_);
  auto ring = *Ring::Create(rec);
  Produce(0, 6);
  Req batch[4];
  ASSERT_EQ(*ring.TakeRequests(batch), 4u);
  EXPECT_EQ(rec.read_calls, 1) << "req_prod and the slots in one access";
  ASSERT_EQ(rec.read_offsets.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(rec.read_offsets[i], kRingHeaderSize + i * kSlot);
  for (int i = 0; i < 4; ++i) ring.PutResponse(Rsp{});
  ASSERT_TRUE(ring.PushResponses().has_value());
  EXPECT_EQ(rec.publish_calls, 1) << "slots and rsp_prod in one access";
}

TEST_F(BackRingTest, RequestFloodBeyondFreeResponseSlots) {
  Init(1);
  const uint32_t size = ring_->size();
  // The frontend fills the ring; the backend answers nothing yet.
  Produce(0, size);
  std::vector<Req> batch(4 * size);
  ASSERT_EQ(*ring_->TakeRequests(batch), size);
  EXPECT_EQ(ring_->outstanding(), size);
  // Every slot now awaits a response: the frontend can't legitimately publish more, and the
  // backend takes nothing even with a huge batch.
  EXPECT_EQ(*ring_->TakeRequests(batch), 0u);
  EXPECT_FALSE(*ring_->FinalCheckForRequests()) << "no free response slot: no work";
  // Answer three (staged, not pushed): three slots free up for the backend.
  for (int i = 0; i < 3; ++i) ring_->PutResponse(Rsp{});
  Produce(size, 3);  // a frontend may only do this after seeing the responses, but be lenient
  ASSERT_EQ(*ring_->TakeRequests(batch), 3u);
  EXPECT_EQ(ring_->outstanding(), size);
  // One more is a flood: more requests than responses it could have seen.
  Produce(size + 3, 1);
  EXPECT_EQ(ring_->TakeRequests(batch).error().code, EPROTO);
}

TEST_F(BackRingTest, BatchesAreBoundedByTheCallersArray) {
  Init(1);
  Produce(0, 20);
  Req batch[7];
  size_t total = 0;
  for (int i = 0; i < 10; ++i) {
    auto n = ring_->TakeRequests(batch);
    ASSERT_TRUE(n.has_value());
    ASSERT_LE(*n, 7u);
    for (size_t k = 0; k < *n; ++k) EXPECT_EQ(batch[k].id, 100 + total + k);
    total += *n;
  }
  EXPECT_EQ(total, 20u);
}

TEST_F(BackRingTest, IndexWrapAround) {
  const uint32_t start = UINT32_MAX - 4;
  Init(1, PageLayout::kContiguous, start);
  Produce(start, 10);  // req_prod wraps to 5
  Req batch[16];
  ASSERT_EQ(*ring_->TakeRequests(batch), 10u);
  for (size_t i = 0; i < 10; ++i) EXPECT_EQ(batch[i].id, 100 + i);
  EXPECT_EQ(ring_->req_cons(), 5u);
  for (int i = 0; i < 10; ++i) ring_->PutResponse(Rsp{});
  EXPECT_TRUE(*ring_->PushResponses());
  EXPECT_EQ(front_->rsp_prod(), 5u);
  EXPECT_FALSE(*ring_->FinalCheckForRequests());
  EXPECT_EQ(front_->req_event(), 6u) << "RING_FINAL_CHECK_FOR_REQUESTS: req_cons + 1";
}

TEST_F(BackRingTest, MultiPageRingWithNonContiguousPages) {
  using blkReq = abi::blkif::x86_32::Request;  // 108-byte slots: some cross page boundaries
  using blkRsp = abi::blkif::x86_32::Response;
  TestPages pages(4, PageLayout::kScattered);
  auto front = *FrontRing<blkReq, blkRsp>::Create(pages.pages());
  DirectRingMemory memory(pages.pages());
  auto back = *BackRing<blkReq, blkRsp>::Create(memory);
  ASSERT_EQ(back.size(), 128u);
  uint64_t id = 0, answered = 0;
  for (int round = 0; round < 40; ++round) {
    while (!front.full()) {
      blkReq q;
      std::memset(&q, static_cast<int>(id), sizeof q);
      q.id = id++;
      front.PutRequest(q);
    }
    ASSERT_TRUE(front.PushRequests().has_value());
    std::vector<BackRing<blkReq, blkRsp>::Slot> slots(50);
    auto n = back.TakeRequestSlots(slots);
    ASSERT_TRUE(n.has_value());
    for (size_t i = 0; i < *n; ++i) {
      const auto q = slots[i].As<blkReq>();
      blkReq want;
      std::memset(&want, static_cast<int>(q.id), sizeof want);
      want.id = q.id;
      ASSERT_EQ(0, std::memcmp(&q, &want, sizeof q)) << "slot " << i << " intact across pages";
      back.PutResponse(blkRsp{q.id, BLKIF_OP_READ, BLKIF_RSP_OKAY});
    }
    ASSERT_TRUE(back.PushResponses().has_value());
    std::vector<blkRsp> rsps(64);
    auto m = front.TakeResponses(rsps);
    ASSERT_TRUE(m.has_value());
    for (size_t i = 0; i < *m; ++i) {
      const uint64_t id = rsps[i].id;  // a copy: x86_32 structs are packed, ids misaligned
      EXPECT_EQ(id, answered++);
    }
  }
  EXPECT_GT(answered, 1000u);
  EXPECT_TRUE(pages.GuardsIntact()) << "no write outside the ring's pages";
}

TEST_F(BackRingTest, MoreResponsesThanRequestsIsACallerBug) {
  Init(1);
  EXPECT_DEATH(ring_->PutResponse(Rsp{}), "producible");
}

TEST(FrontRingHostile, LyingResponseIndexIsRejected) {
  TestPages pages(1);
  auto front = *FrontRing<Req, Rsp>::Create(pages.pages());
  front.PutRequest(Req{1, 0, 0, {}});
  ASSERT_TRUE(front.PushRequests().has_value());
  pages.SetIndex(8, 2);  // two responses to one request
  Rsp out[4];
  auto n = front.TakeResponses(out);
  ASSERT_FALSE(n.has_value());
  EXPECT_EQ(n.error().code, EPROTO);
  EXPECT_TRUE(front.broken());
}

TEST(FrontRingInit, InitialisesTheHeaderLikeSharedRingInit) {
  TestPages pages(1);
  std::memset(pages.pages()[0], 0xAB, kRingHeaderSize);
  auto front = FrontRing<Req, Rsp>::Create(pages.pages());
  ASSERT_TRUE(front.has_value());
  SharedRingHeader h;
  pages.ReadAt(0, &h, sizeof h);
  EXPECT_EQ(h.req_prod, 0u);
  EXPECT_EQ(h.rsp_prod, 0u);
  EXPECT_EQ(h.req_event, 1u);
  EXPECT_EQ(h.rsp_event, 1u);
  for (uint8_t b : h.pad) EXPECT_EQ(b, 0);
  for (uint8_t b : h.pvt) EXPECT_EQ(b, 0);
}

}  // namespace
}  // namespace xpv::ring
