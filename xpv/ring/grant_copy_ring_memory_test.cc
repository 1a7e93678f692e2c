// The same ring traffic over the two ways a backend reaches a frontend's ring on xpv-hv: mapped
// (DirectRingMemory over mapper().Map) and grant copy only (GrantCopyRingMemory, copy mode).
#include "xpv/ring/grant_copy_ring_memory.h"

#include <gtest/gtest.h>

#include <cstring>

#include "xpv/abi/blkif.h"
#include "xpv/platform/sim/sim_host.h"
#include "xpv/ring/back_ring.h"
#include "xpv/ring/front_ring.h"

namespace xpv::ring {
namespace {

using platform::Access;
using platform::CopyOp;
using platform::GrantMapper;
using platform::GrantMapping;
using platform::GrantStatus;
using platform::MapRequest;
using platform::sim::MappingMode;
using platform::sim::SimDomainSpec;
using platform::sim::SimHost;
using platform::sim::SimPlatform;

// Counts round trips to the hypervisor.
class CountingMapper final : public GrantMapper {
 public:
  explicit CountingMapper(GrantMapper& inner) : inner_(inner) {}
  Result<std::unique_ptr<GrantMapping>> Map(std::span<const MapRequest> r) override {
    return inner_.Map(r);
  }
  Status Copy(std::span<CopyOp> ops) override {
    ++calls;
    for (const CopyOp& op : ops) {
      EXPECT_LE(op.source.offset + op.len, kPageSize) << "crosses a page on the source side";
      EXPECT_LE(op.dest.offset + op.len, kPageSize) << "crosses a page on the destination side";
    }
    return inner_.Copy(ops);
  }
  GrantMapper& inner_;
  int calls = 0;
};

class RingOverSimTest : public ::testing::TestWithParam<MappingMode> {
 protected:
  void SetUp() override {
    auto host = SimHost::Start();
    ASSERT_TRUE(host.has_value()) << std::strerror(host.error().code);
    host_ = std::move(*host);
    front_ = NewDomain("front", MappingMode::kMap);
    back_ = NewDomain("back", GetParam());
  }
  std::unique_ptr<SimPlatform> NewDomain(const std::string& name, MappingMode mode) {
    SimDomainSpec spec;
    spec.name = name;
    spec.memory_mib = 4;
    spec.mode = mode;
    auto p = host_->NewDomain(spec);
    EXPECT_TRUE(p.has_value()) << name;
    return p.has_value() ? std::move(*p) : nullptr;
  }
  // The frontend allocates and grants `n` ring pages; returns its page pointers.
  std::vector<uint8_t*> GrantRing(size_t n) {
    auto first = front_->memory().AllocPages(n);
    EXPECT_TRUE(first.has_value());
    std::vector<uint8_t*> pages;
    for (size_t i = 0; i < n; ++i) {
      const Gfn gfn(first->value + i);
      pages.push_back(front_->memory().PageAddress(gfn));
      auto ref = front_->grants().GrantAccess(back_->self(), gfn, Access::kReadWrite);
      EXPECT_TRUE(ref.has_value());
      refs_.push_back(*ref);
    }
    return pages;
  }
  // The backend's view of the ring: mapped or by copy, per the parameter.
  std::unique_ptr<RingMemory> BackendMemory(GrantMapper& mapper) {
    if (GetParam() == MappingMode::kCopy) {
      auto m = GrantCopyRingMemory::Create(mapper, back_->memory(), front_->self(), refs_);
      EXPECT_TRUE(m.has_value());
      return m.has_value() ? std::move(*m) : nullptr;
    }
    std::vector<MapRequest> reqs;
    for (GrantRef r : refs_) reqs.push_back({front_->self(), r, Access::kReadWrite});
    auto m = mapper.Map(reqs);
    EXPECT_TRUE(m.has_value());
    mapping_ = std::move(*m);
    std::vector<uint8_t*> pages;
    for (size_t i = 0; i < mapping_->size(); ++i) {
      EXPECT_EQ(mapping_->status(i), GrantStatus::kOkay);
      pages.push_back(mapping_->page(i));
    }
    return std::make_unique<DirectRingMemory>(pages);
  }

  template <typename Req, typename Rsp>
  void Traffic(size_t nr_pages) {
    auto pages = GrantRing(nr_pages);
    auto front = FrontRing<Req, Rsp>::Create(pages);
    ASSERT_TRUE(front.has_value());
    CountingMapper mapper(back_->mapper());
    auto memory = BackendMemory(mapper);
    ASSERT_NE(memory, nullptr);
    auto back = BackRing<Req, Rsp>::Create(*memory);
    ASSERT_TRUE(back.has_value());
    ASSERT_EQ(back->size(), front->size());

    uint64_t next = 0, answered = 0;
    for (int round = 0; round < 30; ++round) {
      const uint32_t k = 1 + round % front->free_requests();
      for (uint32_t i = 0; i < k && !front->full(); ++i) {
        Req q;
        std::memset(&q, static_cast<int>(next), sizeof q);
        q.operation = BLKIF_OP_WRITE;
        q.id = next++;
        front->PutRequest(q);
      }
      ASSERT_TRUE(front->PushRequests().has_value());

      std::vector<Req> batch(16);
      mapper.calls = 0;
      auto n = back->TakeRequests(batch);
      ASSERT_TRUE(n.has_value());
      if (GetParam() == MappingMode::kCopy) {
        EXPECT_EQ(mapper.calls, 1) << "one Copy batch";
      }
      for (size_t i = 0; i < *n; ++i) {
        Req want;
        std::memset(&want, static_cast<int>(batch[i].id), sizeof want);
        want.operation = BLKIF_OP_WRITE;
        want.id = batch[i].id;
        ASSERT_EQ(0, std::memcmp(&want, &batch[i], sizeof want));
        Rsp s;
        std::memset(&s, 0, sizeof s);
        s.id = batch[i].id;
        s.operation = batch[i].operation;
        s.status = BLKIF_RSP_OKAY;
        back->PutResponse(s);
      }
      mapper.calls = 0;
      ASSERT_TRUE(back->PushResponses().has_value());
      if (GetParam() == MappingMode::kCopy) {
        EXPECT_LE(mapper.calls, 2) << "slots, then rsp_prod";
      }

      std::vector<Rsp> rsps(front->size());
      auto m = front->TakeResponses(rsps);
      ASSERT_TRUE(m.has_value());
      for (size_t i = 0; i < *m; ++i) {
        const uint64_t id = rsps[i].id;  // a copy: x86_32 structs are packed, ids misaligned
        ASSERT_EQ(id, answered++);
      }
      ASSERT_TRUE(back->FinalCheckForRequests().has_value());
    }
    EXPECT_GT(answered, 30u);
  }

  std::unique_ptr<SimHost> host_;
  std::unique_ptr<SimPlatform> front_, back_;
  std::vector<GrantRef> refs_;
  std::unique_ptr<GrantMapping> mapping_;
};

namespace blk = abi::blkif;

TEST_P(RingOverSimTest, OnePageX86_64) {
  Traffic<blk::x86_64::Request, blk::x86_64::Response>(1);
}
TEST_P(RingOverSimTest, FourPagesX86_32SlotsCrossPages) {
  Traffic<blk::x86_32::Request, blk::x86_32::Response>(4);
}
TEST_P(RingOverSimTest, SixteenPagesX86_64) {
  Traffic<blk::x86_64::Request, blk::x86_64::Response>(16);
}

TEST_P(RingOverSimTest, RevokedRingGrantIsAnErrorNotACrash) {
  if (GetParam() != MappingMode::kCopy) GTEST_SKIP() << "a mapping pins the grant";
  auto pages = GrantRing(2);
  auto front = FrontRing<blk::x86_64::Request, blk::x86_64::Response>::Create(pages);
  ASSERT_TRUE(front.has_value());
  auto memory = BackendMemory(back_->mapper());
  auto back = BackRing<blk::x86_64::Request, blk::x86_64::Response>::Create(*memory);
  ASSERT_TRUE(back.has_value());
  ASSERT_TRUE(front_->grants().EndAccess(refs_[1]).has_value());
  std::vector<blk::x86_64::Request> batch(back->size());
  auto n = back->TakeRequests(batch);  // reads slots on page 1
  ASSERT_FALSE(n.has_value());
  EXPECT_EQ(n.error().code, EFAULT);
}

INSTANTIATE_TEST_SUITE_P(Modes, RingOverSimTest,
                         ::testing::Values(MappingMode::kMap, MappingMode::kCopy),
                         [](const auto& info) {
                           return info.param == MappingMode::kMap ? std::string("Direct")
                                                                  : std::string("GrantCopy");
                         });

}  // namespace
}  // namespace xpv::ring
