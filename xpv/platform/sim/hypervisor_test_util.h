// Test helpers for the hypervisor core: domains attached in-process, with the guest's own view
// of its grant table and RAM mapped from the fds a real domain would receive.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "xpv/platform/sim/grant_entry.h"
#include "xpv/platform/sim/hypervisor.h"

namespace xpv::platform::sim::testing {

struct TestDomain {
  DomId domid;
  SessionId session = 0;
  SessionInfo info;
  SharedMemory shared;  // the guest's mapping of its grant table
  SharedMemory ram;     // the guest's mapping of its RAM

  grant_entry_v1_t* entry(uint32_t ref) {
    return reinterpret_cast<grant_entry_v1_t*>(shared.data()) + ref;
  }
  uint8_t* page(uint64_t gfn) { return ram.data() + gfn * kPageSize; }
  // The guest grants `gfn` to `peer` as entry `ref` (publish order of grant_table.h).
  void Grant(uint32_t ref, DomId peer, uint64_t gfn, bool readonly = false) {
    PublishGrant(entry(ref), static_cast<uint16_t>(peer.value), static_cast<uint32_t>(gfn),
                 readonly);
  }
  uint16_t flags(uint32_t ref) { return __atomic_load_n(&entry(ref)->flags, __ATOMIC_ACQUIRE); }
  uint32_t gen(uint32_t port) {
    auto* gens = reinterpret_cast<uint32_t*>(shared.data() + PortGenOffset(info.grant_frames));
    return __atomic_load_n(&gens[port], __ATOMIC_ACQUIRE);
  }
};

inline UniqueFd Dup(int fd) {
  return UniqueFd(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
}

// True if a notification is waiting on `fd` (a port's receive end); consumes them.
inline bool TakePending(int fd) {
  char buf[16];
  bool any = false;
  while (::recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) any = true;
  return any;
}

class CoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HypervisorOptions o;
    o.dom0_memory_mib = 16;
    auto hv = Hypervisor::Create(o);
    ASSERT_TRUE(hv.has_value());
    hv_ = std::move(*hv);
  }

  std::unique_ptr<TestDomain> Attach(DomId domid, uint64_t incarnation) {
    auto t = std::make_unique<TestDomain>();
    auto info = hv_->Attach(domid, incarnation);
    EXPECT_TRUE(info.has_value());
    if (!info) return nullptr;
    t->domid = domid;
    t->session = info->id;
    t->info = std::move(*info);
    t->shared =
        std::move(*SharedMemory::Map(Dup(t->info.shared_fd), SharedSize(t->info.grant_frames)));
    t->ram = std::move(*SharedMemory::Map(Dup(t->info.ram_fd), t->info.ram_pages * kPageSize));
    return t;
  }

  std::unique_ptr<TestDomain> Make(const std::string& name, MappingMode mode = MappingMode::kMap,
                                   Privilege privilege = Privilege::kNone,
                                   uint64_t memory_mib = 4) {
    DomainConfig c;
    c.name = name;
    c.memory_mib = memory_mib;
    c.mode = mode;
    c.privilege = privilege;
    c.grant_frames = 4;
    auto created = hv_->CreateDomain(c);
    EXPECT_TRUE(created.has_value());
    if (!created) return nullptr;
    return Attach(created->domid, created->incarnation);
  }

  std::unique_ptr<TestDomain> Dom0() { return Attach(kDom0, hv_->Find(kDom0)->incarnation); }

  MapResult MapOne(TestDomain& mapper, DomId granter, uint32_t ref, bool readonly = false) {
    MapOp op{granter, GrantRef(ref), readonly};
    MapResult r;
    hv_->Map(mapper.session, {&op, 1}, {&r, 1});
    return r;
  }
  int16_t UnmapOne(TestDomain& mapper, uint32_t handle) {
    int16_t st = 0;
    hv_->Unmap(mapper.session, {&handle, 1}, {&st, 1});
    return st;
  }

  static gnttab_copy_t GrantToLocal(DomId granter, uint32_t ref, uint16_t src_off, uint64_t gfn,
                                    uint16_t dst_off, uint16_t len) {
    gnttab_copy_t op{};
    op.flags = GNTCOPY_source_gref;
    op.source.u.ref = ref;
    op.source.domid = static_cast<domid_t>(granter.value);
    op.source.offset = src_off;
    op.dest.u.gmfn = gfn;
    op.dest.domid = DOMID_SELF;
    op.dest.offset = dst_off;
    op.len = len;
    return op;
  }
  static gnttab_copy_t LocalToGrant(uint64_t gfn, uint16_t src_off, DomId granter, uint32_t ref,
                                    uint16_t dst_off, uint16_t len) {
    gnttab_copy_t op{};
    op.flags = GNTCOPY_dest_gref;
    op.source.u.gmfn = gfn;
    op.source.domid = DOMID_SELF;
    op.source.offset = src_off;
    op.dest.u.ref = ref;
    op.dest.domid = static_cast<domid_t>(granter.value);
    op.dest.offset = dst_off;
    op.len = len;
    return op;
  }
  int16_t CopyOne(TestDomain& who, gnttab_copy_t op) {
    hv_->Copy(who.session, {&op, 1});
    return op.status;
  }

  std::unique_ptr<Hypervisor> hv_;
};

}  // namespace xpv::platform::sim::testing
