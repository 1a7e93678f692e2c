// How PlatformRings finds a domain's store page, with fake platform parts: through grant ref 1
// first when given a GrantMapper (Xen 4.17's map_interface()), the gfn otherwise, and the store's
// own domain through the page handed to SetLocal, notified once bound (Xen's dom0_init()).
#include <gtest/gtest.h>

#include <array>
#include <vector>

#include "xpv/xenstore/platform_ring.h"

namespace xpv::xenstore {
namespace {

using platform::GrantStatus;

struct Page final : platform::ForeignPage {
  std::array<uint8_t, kPageSize> bytes{};
  uint8_t* data() override { return bytes.data(); }
};

struct FakeControl final : platform::DomainControl {
  Result<std::vector<platform::DomainInfo>> List() override {
    return std::vector<platform::DomainInfo>{};
  }
  Status Destroy(DomId) override { return Ok(); }
  Result<std::unique_ptr<platform::ForeignPage>> MapForeign(DomId domid, Gfn gfn) override {
    foreign.emplace_back(domid, gfn);
    return std::unique_ptr<platform::ForeignPage>(new Page);
  }
  int death_fd() const override { return -1; }
  std::vector<DomId> TakeDead() override { return {}; }
  std::vector<std::pair<DomId, Gfn>> foreign;
};

struct FakeEvents final : platform::EventChannels {
  Result<EvtchnPort> AllocUnbound(DomId) override { return EvtchnPort(99); }
  Result<EvtchnPort> BindInterdomain(DomId, EvtchnPort remote) override {
    return EvtchnPort(remote.value + 100);
  }
  Status Notify(EvtchnPort p) override {
    notified.push_back(p.value);
    return Ok();
  }
  Status Close(EvtchnPort) override { return Ok(); }
  Status Unmask(EvtchnPort) override { return Ok(); }
  int fd() const override { return -1; }
  std::optional<EvtchnPort> NextPending() override { return std::nullopt; }
  std::vector<uint32_t> notified;
};

struct FakeMapping final : platform::GrantMapping {
  FakeMapping(GrantStatus s, uint8_t* page) {
    status_.push_back(s);
    pages_.push_back(s == GrantStatus::kOkay ? page : nullptr);
  }
};

struct FakeMapper final : platform::GrantMapper {
  Result<std::unique_ptr<platform::GrantMapping>> Map(
      std::span<const platform::MapRequest> reqs) override {
    for (const auto& r : reqs) mapped.emplace_back(r.domid, r.ref);
    return std::unique_ptr<platform::GrantMapping>(new FakeMapping(status, page.bytes.data()));
  }
  Status Copy(std::span<platform::CopyOp>) override { return Err(EOPNOTSUPP); }
  GrantStatus status = GrantStatus::kOkay;
  Page page;
  std::vector<std::pair<DomId, GrantRef>> mapped;
};

TEST(PlatformRingPaths, GfnOnlyWithoutMapper) {
  FakeControl control;
  FakeEvents events;
  PlatformRings rings(control, events);
  auto port = rings.Factory()(DomId(3), 1234, 7);
  ASSERT_TRUE(port);
  ASSERT_EQ(control.foreign.size(), 1u);
  EXPECT_EQ(control.foreign[0].second, Gfn(1234));
  EXPECT_TRUE(events.notified.empty());  // Xen notifies only the local ring on introduction
}

TEST(PlatformRingPaths, GrantRefOneFirst) {
  FakeControl control;
  FakeEvents events;
  FakeMapper mapper;
  PlatformRings rings(control, events, &mapper);
  auto port = rings.Factory()(DomId(3), 1234, 7);
  ASSERT_TRUE(port);
  ASSERT_EQ(mapper.mapped.size(), 1u);
  EXPECT_EQ(mapper.mapped[0].first, DomId(3));
  EXPECT_EQ(mapper.mapped[0].second, kGrantRefXenstore);
  EXPECT_TRUE(control.foreign.empty());
  EXPECT_EQ(reinterpret_cast<uint8_t*>((*port)->page()), mapper.page.bytes.data());
}

TEST(PlatformRingPaths, GfnWhenTheGrantCannotBeMapped) {
  FakeControl control;
  FakeEvents events;
  FakeMapper mapper;
  mapper.status = GrantStatus::kBadGntref;
  PlatformRings rings(control, events, &mapper);
  ASSERT_TRUE(rings.Factory()(DomId(4), 55, 7));
  ASSERT_EQ(control.foreign.size(), 1u);
  EXPECT_EQ(control.foreign[0].second, Gfn(55));
}

TEST(PlatformRingPaths, LocalRingUsesTheGivenPageAndIsNotified) {
  FakeControl control;
  FakeEvents events;
  FakeMapper mapper;
  Page local;
  PlatformRings rings(control, events, &mapper);
  rings.SetLocal(kDom0, &local);
  auto port = rings.Factory()(kDom0, 0, 5);
  ASSERT_TRUE(port);
  EXPECT_EQ(reinterpret_cast<uint8_t*>((*port)->page()), local.bytes.data());
  EXPECT_TRUE(mapper.mapped.empty());
  EXPECT_TRUE(control.foreign.empty());
  EXPECT_EQ(events.notified, std::vector<uint32_t>{105});  // the bound local port
}

}  // namespace
}  // namespace xpv::xenstore
