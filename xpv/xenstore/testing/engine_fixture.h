// A GoogleTest fixture over testing::World: an engine with dom0 and domains 5 and 6 introduced,
// each with a home it owns, and one FakeClient per domain.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "xpv/xenstore/testing/fake_sink.h"

namespace xpv::xenstore::testing {

// An expected watch event (RecordedEvent compares path and token only).
inline RecordedEvent Ev(std::string path, std::string token) {
  return {std::move(path), std::move(token), 0};
}

class EngineFixture : public ::testing::Test {
 protected:
  World world_;
  Engine& engine = world_.engine;
  FakeClient& dom0 = world_.dom0;
  FakeClient& dom5 = *world_.dom5;
  FakeClient& dom6 = *world_.dom6;

  // The nodes the engine has charged to `domid` (CONTROL "quota <domid>").
  long long OwnedNodes(DomId domid) { return QuotaRow(dom0, domid, "nodes"); }
  void SetQuota(std::string_view name, uint32_t value) {
    ASSERT_EQ(Outcome(dom0.Control({"quota", "set", name, std::to_string(value)})), "OK");
  }
};

}  // namespace xpv::xenstore::testing
