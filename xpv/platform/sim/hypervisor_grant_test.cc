// Grant-table rules of the hypervisor core, one test per rule; hostile ones are named after the
// attack.
#include <atomic>
#include <cstring>
#include <thread>

#include "xpv/platform/sim/hypervisor_test_util.h"

namespace xpv::platform::sim::testing {
namespace {

class GrantTest : public CoreTest {
 protected:
  void SetUp() override {
    CoreTest::SetUp();
    front_ = Make("front");
    back_ = Make("back", MappingMode::kMap);
    ASSERT_TRUE(front_ && back_);
    std::memset(front_->page(5), 0xAB, kPageSize);
  }
  std::unique_ptr<TestDomain> front_, back_;
};

TEST_F(GrantTest, MapSetsReadingWritingAndCapturesTheFrame) {
  front_->Grant(10, back_->domid, 5);
  MapResult r = MapOne(*back_, front_->domid, 10);
  ASSERT_EQ(r.status, GNTST_okay);
  EXPECT_EQ(r.gfn, 5u);
  EXPECT_GE(r.ram_fd, 0) << "the first mapping of a domain's RAM hands its fd over";
  EXPECT_EQ(front_->flags(10), GTF_permit_access | GTF_reading | GTF_writing);
  EXPECT_EQ(hv_->PinsForTest(front_->domid, GrantRef(10)), 1u);

  // A second mapping of the same RAM needs no new fd.
  front_->Grant(11, back_->domid, 6);
  MapResult r2 = MapOne(*back_, front_->domid, 11);
  ASSERT_EQ(r2.status, GNTST_okay);
  EXPECT_EQ(r2.ram_fd, -1);

  EXPECT_EQ(UnmapOne(*back_, r.handle), GNTST_okay);
  EXPECT_EQ(front_->flags(10), GTF_permit_access);
  EXPECT_EQ(hv_->PinsForTest(front_->domid, GrantRef(10)), 0u);
}

TEST_F(GrantTest, ReadOnlyMapSetsOnlyReading) {
  front_->Grant(10, back_->domid, 5, /*readonly=*/true);
  MapResult r = MapOne(*back_, front_->domid, 10, /*readonly=*/true);
  ASSERT_EQ(r.status, GNTST_okay);
  EXPECT_EQ(front_->flags(10), GTF_permit_access | GTF_readonly | GTF_reading);
  EXPECT_EQ(UnmapOne(*back_, r.handle), GNTST_okay);
  EXPECT_EQ(front_->flags(10), GTF_permit_access | GTF_readonly);
}

TEST_F(GrantTest, WriterLeavingKeepsReadingForRemainingReader) {
  front_->Grant(10, back_->domid, 5);
  MapResult ro = MapOne(*back_, front_->domid, 10, true);
  MapResult rw = MapOne(*back_, front_->domid, 10, false);
  ASSERT_EQ(ro.status, GNTST_okay);
  ASSERT_EQ(rw.status, GNTST_okay);
  EXPECT_EQ(UnmapOne(*back_, rw.handle), GNTST_okay);
  EXPECT_EQ(front_->flags(10), GTF_permit_access | GTF_reading);
  EXPECT_EQ(UnmapOne(*back_, ro.handle), GNTST_okay);
  EXPECT_EQ(front_->flags(10), GTF_permit_access);
}

TEST_F(GrantTest, BadRef) {
  const uint32_t past_end = 4 * abi::kGrantEntriesPerFrame;
  EXPECT_EQ(MapOne(*back_, front_->domid, past_end).status, GNTST_bad_gntref);
  EXPECT_EQ(MapOne(*back_, front_->domid, 0xFFFFFFFFu).status, GNTST_bad_gntref);
  EXPECT_EQ(CopyOne(*back_, GrantToLocal(front_->domid, past_end, 0, 0, 0, 8)), GNTST_bad_gntref);
}

TEST_F(GrantTest, UngrantedRefIsAGeneralError) {
  // An entry that was never published: Xen's "Bad flags (0) or dom".
  EXPECT_EQ(MapOne(*back_, front_->domid, 20).status, GNTST_general_error);
  EXPECT_EQ(front_->flags(20), 0);
}

TEST_F(GrantTest, BadDomain) {
  front_->Grant(10, back_->domid, 5);
  EXPECT_EQ(MapOne(*back_, DomId(999), 10).status, GNTST_bad_domain);
  EXPECT_EQ(MapOne(*back_, kDomIdSelf, 10).status, GNTST_bad_domain);
  EXPECT_EQ(CopyOne(*back_, GrantToLocal(DomId(999), 10, 0, 0, 0, 8)), GNTST_bad_domain);
}

TEST_F(GrantTest, RefGrantedToAnotherDomain) {
  auto third = Make("third");
  front_->Grant(10, third->domid, 5);
  // _set_status_v1: the entry's domid is not the mapper's.
  EXPECT_EQ(MapOne(*back_, front_->domid, 10).status, GNTST_general_error);
  EXPECT_EQ(CopyOne(*back_, GrantToLocal(front_->domid, 10, 0, 0, 0, 8)), GNTST_general_error);
  EXPECT_EQ(front_->flags(10), GTF_permit_access) << "a refused map leaves no trace";
  // The rightful grantee may.
  EXPECT_EQ(MapOne(*third, front_->domid, 10).status, GNTST_okay);
  // And while it holds the pin, nobody else gets in.
  EXPECT_EQ(MapOne(*back_, front_->domid, 10).status, GNTST_general_error);
}

TEST_F(GrantTest, WriteThroughReadOnlyGrant) {
  front_->Grant(10, back_->domid, 5, /*readonly=*/true);
  // Mapping a read-only grant for writing is refused...
  EXPECT_EQ(MapOne(*back_, front_->domid, 10, /*readonly=*/false).status, GNTST_permission_denied);
  EXPECT_EQ(front_->flags(10), GTF_permit_access | GTF_readonly);
  // ... copying into it too, and the page is untouched ...
  std::memset(back_->page(0), 0x11, kPageSize);
  EXPECT_EQ(CopyOne(*back_, LocalToGrant(0, 0, front_->domid, 10, 0, 64)), GNTST_permission_denied);
  EXPECT_EQ(front_->page(5)[0], 0xAB);
  // ... even when it is already mapped read-only (the write pin is a separate check).
  MapResult ro = MapOne(*back_, front_->domid, 10, /*readonly=*/true);
  ASSERT_EQ(ro.status, GNTST_okay);
  EXPECT_EQ(MapOne(*back_, front_->domid, 10, false).status, GNTST_permission_denied);
  EXPECT_EQ(CopyOne(*back_, LocalToGrant(0, 0, front_->domid, 10, 0, 64)), GNTST_permission_denied);
  EXPECT_EQ(front_->page(5)[0], 0xAB);
  // Reading it is fine.
  EXPECT_EQ(CopyOne(*back_, GrantToLocal(front_->domid, 10, 0, 1, 0, 64)), GNTST_okay);
  EXPECT_EQ(back_->page(1)[63], 0xAB);
}

TEST_F(GrantTest, EndAccessWhileMapped) {
  front_->Grant(10, back_->domid, 5, /*readonly=*/true);
  MapResult r = MapOne(*back_, front_->domid, 10, true);
  ASSERT_EQ(r.status, GNTST_okay);
  // grant_table.h: the frontend must observe !(GTF_reading|GTF_writing) before it may invalidate.
  EXPECT_EQ(EndGrant(front_->entry(10)), EndGrantResult::kInUse);
  EXPECT_EQ(UnmapOne(*back_, r.handle), GNTST_okay);
  EXPECT_EQ(EndGrant(front_->entry(10)), EndGrantResult::kEnded);
  EXPECT_EQ(front_->flags(10), 0);
  // Ended: no new mapping.
  EXPECT_EQ(MapOne(*back_, front_->domid, 10, true).status, GNTST_general_error);
}

TEST_F(GrantTest, EndAccessWhileWriteMapped) {
  front_->Grant(10, back_->domid, 5);
  MapResult r = MapOne(*back_, front_->domid, 10);
  ASSERT_EQ(r.status, GNTST_okay);
  EXPECT_EQ(EndGrant(front_->entry(10)), EndGrantResult::kInUse);
  EXPECT_EQ(UnmapOne(*back_, r.handle), GNTST_okay);
  EXPECT_EQ(EndGrant(front_->entry(10)), EndGrantResult::kEnded);
}

TEST_F(GrantTest, FrontendClearingFlagsWhileMappedCannotUnpin) {
  // A hostile frontend ignores the protocol and zeroes its entry while the page is mapped. The
  // hypervisor's pin (and captured frame) survives; unmap still works and clears what it set.
  front_->Grant(10, back_->domid, 5);
  MapResult r = MapOne(*back_, front_->domid, 10);
  ASSERT_EQ(r.status, GNTST_okay);
  std::memset(front_->entry(10), 0, sizeof(grant_entry_v1_t));
  front_->Grant(10, back_->domid, 7);  // and re-points it
  MapResult again = MapOne(*back_, front_->domid, 10);
  ASSERT_EQ(again.status, GNTST_okay);
  EXPECT_EQ(again.gfn, 5u) << "an active entry keeps the frame it was pinned with";
  EXPECT_EQ(UnmapOne(*back_, r.handle), GNTST_okay);
  EXPECT_EQ(UnmapOne(*back_, again.handle), GNTST_okay);
  EXPECT_EQ(hv_->PinsForTest(front_->domid, GrantRef(10)), 0u);
}

TEST_F(GrantTest, GrantOfFrameBeyondRamIsBadPage) {
  front_->Grant(10, back_->domid, 1u << 30);
  EXPECT_EQ(MapOne(*back_, front_->domid, 10).status, GNTST_bad_page);
  EXPECT_EQ(front_->flags(10), GTF_permit_access) << "the flags set for the attempt are undone";
  EXPECT_EQ(CopyOne(*back_, GrantToLocal(front_->domid, 10, 0, 0, 0, 8)), GNTST_bad_page);
  EXPECT_EQ(front_->flags(10), GTF_permit_access);
}

TEST_F(GrantTest, SubPageGrantCannotBeMapped) {
  front_->Grant(10, back_->domid, 5);
  __atomic_fetch_or(&front_->entry(10)->flags, static_cast<uint16_t>(GTF_sub_page),
                    __ATOMIC_SEQ_CST);
  EXPECT_EQ(MapOne(*back_, front_->domid, 10).status, GNTST_general_error);
  // ... but copied from, as Xen allows.
  EXPECT_EQ(CopyOne(*back_, GrantToLocal(front_->domid, 10, 0, 0, 0, 8)), GNTST_okay);
}

TEST_F(GrantTest, CopyCrossingAPage) {
  front_->Grant(10, back_->domid, 5);
  EXPECT_EQ(CopyOne(*back_, GrantToLocal(front_->domid, 10, 4000, 0, 0, 200)), GNTST_bad_copy_arg);
  EXPECT_EQ(CopyOne(*back_, GrantToLocal(front_->domid, 10, 0, 0, 4000, 200)), GNTST_bad_copy_arg);
  EXPECT_EQ(CopyOne(*back_, GrantToLocal(front_->domid, 10, 0xFFFF, 0, 0xFFFF, 0xFFFF)),
            GNTST_bad_copy_arg);
  EXPECT_EQ(front_->flags(10), GTF_permit_access) << "nothing was pinned for a bad op";
  // Exactly to the end of the page is fine.
  EXPECT_EQ(CopyOne(*back_, GrantToLocal(front_->domid, 10, 4096 - 200, 0, 4096 - 200, 200)),
            GNTST_okay);
}

TEST_F(GrantTest, CopyBothWaysAndFlagsAfterwards) {
  front_->Grant(10, back_->domid, 5);
  for (int i = 0; i < 4096; ++i) back_->page(2)[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(CopyOne(*back_, LocalToGrant(2, 0, front_->domid, 10, 0, 4096)), GNTST_okay);
  EXPECT_EQ(std::memcmp(front_->page(5), back_->page(2), kPageSize), 0);
  EXPECT_EQ(CopyOne(*back_, GrantToLocal(front_->domid, 10, 100, 3, 200, 50)), GNTST_okay);
  EXPECT_EQ(std::memcmp(back_->page(3) + 200, back_->page(2) + 100, 50), 0);
  EXPECT_EQ(front_->flags(10), GTF_permit_access) << "copy pins only while it runs";
  EXPECT_EQ(hv_->PinsForTest(front_->domid, GrantRef(10)), 0u);
}

TEST_F(GrantTest, CopyWorksInCopyModeAndMapIsRefused) {
  auto copier = Make("copier", MappingMode::kCopy);
  front_->Grant(10, copier->domid, 5);
  EXPECT_EQ(MapOne(*copier, front_->domid, 10).status, GNTST_permission_denied);
  EXPECT_EQ(front_->flags(10), GTF_permit_access);
  EXPECT_EQ(CopyOne(*copier, GrantToLocal(front_->domid, 10, 0, 0, 0, 4096)), GNTST_okay);
  EXPECT_EQ(copier->page(0)[4095], 0xAB);
}

TEST_F(GrantTest, CopyByFrameOfAnotherDomain) {
  // gnttab_copy_lock_domain: only the local domain may be referenced by frame.
  gnttab_copy_t op = GrantToLocal(front_->domid, 10, 0, 0, 0, 8);
  op.flags = 0;
  op.source.u.gmfn = 5;
  op.source.domid = static_cast<domid_t>(front_->domid.value);
  EXPECT_EQ(CopyOne(*back_, op), GNTST_permission_denied);
  // By its own domid it is allowed (Xen 4.15+), by DOMID_SELF too.
  op.source.domid = static_cast<domid_t>(back_->domid.value);
  EXPECT_EQ(CopyOne(*back_, op), GNTST_okay);
}

TEST_F(GrantTest, CopyThroughOwnGrantNamedDomidSelf) {
  // A domain may copy through a grant of its own, naming itself DOMID_SELF, as on Xen; a map of
  // the same is refused (map_grant_ref takes real domain ids only).
  back_->page(2)[0] = 0x5A;
  back_->Grant(3, back_->domid, 2);
  EXPECT_EQ(CopyOne(*back_, GrantToLocal(kDomIdSelf, 3, 0, 7, 0, 1)), GNTST_okay);
  EXPECT_EQ(back_->page(7)[0], 0x5A);
  EXPECT_EQ(back_->flags(3), GTF_permit_access) << "the pin is released";
  EXPECT_EQ(MapOne(*back_, kDomIdSelf, 3).status, GNTST_bad_domain);
}

TEST_F(GrantTest, CopyOwnFrameBeyondRam) {
  front_->Grant(10, back_->domid, 5);
  EXPECT_EQ(CopyOne(*back_, GrantToLocal(front_->domid, 10, 0, 1ull << 40, 0, 8)), GNTST_bad_page);
  EXPECT_EQ(front_->flags(10), GTF_permit_access) << "the source pin is released";
}

TEST_F(GrantTest, UnmapBadHandle) {
  EXPECT_EQ(UnmapOne(*back_, 0), GNTST_bad_handle);
  EXPECT_EQ(UnmapOne(*back_, 0xFFFFFFFFu), GNTST_bad_handle);
  front_->Grant(10, back_->domid, 5);
  MapResult r = MapOne(*back_, front_->domid, 10);
  ASSERT_EQ(r.status, GNTST_okay);
  auto other = Make("other", MappingMode::kMap);
  EXPECT_EQ(UnmapOne(*other, r.handle), GNTST_bad_handle) << "handles are per session";
  EXPECT_EQ(UnmapOne(*back_, r.handle), GNTST_okay);
  EXPECT_EQ(UnmapOne(*back_, r.handle), GNTST_bad_handle) << "double unmap";
}

TEST_F(GrantTest, PinCountOverflow) {
  front_->Grant(10, back_->domid, 5);
  std::vector<uint32_t> handles;
  for (uint32_t i = 0; i < kMaxPinsPerEntry; ++i) {
    MapResult r = MapOne(*back_, front_->domid, 10, true);
    ASSERT_EQ(r.status, GNTST_okay);
    handles.push_back(r.handle);
  }
  EXPECT_EQ(MapOne(*back_, front_->domid, 10, true).status, GNTST_general_error);
  for (uint32_t h : handles) EXPECT_EQ(UnmapOne(*back_, h), GNTST_okay);
  EXPECT_EQ(front_->flags(10), GTF_permit_access);
}

TEST_F(GrantTest, MaptrackExhaustion) {
  for (uint32_t ref = 8; ref < 8 + 128; ++ref) front_->Grant(ref, back_->domid, ref);
  std::vector<uint32_t> handles;
  int16_t last = GNTST_okay;
  for (uint32_t i = 0; i < kMaxMaptrack + 1 && last == GNTST_okay; ++i) {
    MapResult r = MapOne(*back_, front_->domid, 8 + (i % 128), true);
    last = r.status;
    if (r.status == GNTST_okay) handles.push_back(r.handle);
  }
  EXPECT_EQ(last, GNTST_no_space);
  EXPECT_EQ(handles.size(), kMaxMaptrack);
  for (uint32_t h : handles) ASSERT_EQ(UnmapOne(*back_, h), GNTST_okay);
}

TEST_F(GrantTest, BatchReportsEachStatus) {
  front_->Grant(10, back_->domid, 5);
  front_->Grant(11, back_->domid, 6, true);
  MapOp ops[] = {{front_->domid, GrantRef(10), false},
                 {front_->domid, GrantRef(99999), false},
                 {front_->domid, GrantRef(11), false},
                 {DomId(4242), GrantRef(10), false},
                 {front_->domid, GrantRef(11), true}};
  MapResult rs[5];
  hv_->Map(back_->session, ops, rs);
  EXPECT_EQ(rs[0].status, GNTST_okay);
  EXPECT_EQ(rs[1].status, GNTST_bad_gntref);
  EXPECT_EQ(rs[2].status, GNTST_permission_denied);
  EXPECT_EQ(rs[3].status, GNTST_bad_domain);
  EXPECT_EQ(rs[4].status, GNTST_okay);
  uint32_t handles[] = {rs[0].handle, 12345, rs[4].handle};
  int16_t st[3];
  hv_->Unmap(back_->session, handles, st);
  EXPECT_EQ(st[0], GNTST_okay);
  EXPECT_EQ(st[1], GNTST_bad_handle);
  EXPECT_EQ(st[2], GNTST_okay);
}

TEST_F(GrantTest, FlappingEntryNeitherHangsNorCorruptsPins) {
  // A hostile frontend flips its entry's flags and domid as fast as it can while the backend maps
  // and copies: every op ends okay or with a GNTST error, and no pin is left behind.
  front_->Grant(10, back_->domid, 5);
  std::atomic<bool> stop{false};
  std::thread flipper([&] {
    auto* raw = reinterpret_cast<uint32_t*>(front_->entry(10));
    uint32_t i = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      uint32_t v = (i++ & 1) ? (GTF_permit_access | (back_->domid.value << 16)) : 0x12340001u;
      __atomic_store_n(raw, v, __ATOMIC_RELAXED);
    }
  });
  int ok = 0;
  for (int i = 0; i < 20000; ++i) {
    MapResult r = MapOne(*back_, front_->domid, 10, i & 1);
    ASSERT_TRUE(r.status == GNTST_okay || r.status == GNTST_general_error) << r.status;
    if (r.status == GNTST_okay) {
      ++ok;
      ASSERT_EQ(UnmapOne(*back_, r.handle), GNTST_okay);
    }
    int16_t c = CopyOne(*back_, GrantToLocal(front_->domid, 10, 0, 0, 0, 16));
    ASSERT_TRUE(c == GNTST_okay || c == GNTST_general_error) << c;
  }
  stop = true;
  flipper.join();
  EXPECT_EQ(hv_->PinsForTest(front_->domid, GrantRef(10)), 0u);
  (void)ok;
}

TEST_F(GrantTest, StorePageIsGrantedToTheStoreDomain) {
  // grant_table.h GNTTAB_RESERVED_XENSTORE, granted at creation to the store's domain (dom0 here).
  const uint64_t store = front_->info.store_gfn->value;
  EXPECT_EQ(store, front_->info.ram_pages - 1);
  EXPECT_EQ(front_->flags(GNTTAB_RESERVED_XENSTORE), GTF_permit_access);
  EXPECT_EQ(front_->entry(GNTTAB_RESERVED_XENSTORE)->domid, 0);
  EXPECT_EQ(front_->entry(GNTTAB_RESERVED_XENSTORE)->frame, store);
  EXPECT_EQ(front_->info.ref_first, static_cast<uint32_t>(GNTTAB_NR_RESERVED_ENTRIES));
  EXPECT_EQ(front_->info.gfn_end, store) << "the store page is not the guest allocator's";
  auto dom0 = Dom0();
  front_->page(store)[0] = 0x5A;
  MapResult r = MapOne(*dom0, front_->domid, GNTTAB_RESERVED_XENSTORE);
  ASSERT_EQ(r.status, GNTST_okay);
  EXPECT_EQ(r.gfn, store);
  EXPECT_EQ(UnmapOne(*dom0, r.handle), GNTST_okay);
}

TEST_F(GrantTest, DomainKilledWhileItsGrantsAreMapped) {
  front_->Grant(10, back_->domid, 5);
  MapResult r = MapOne(*back_, front_->domid, 10);
  ASSERT_EQ(r.status, GNTST_okay);
  const DomId front = front_->domid;
  hv_->Detach(front_->session);  // its process died
  auto rec = hv_->Find(front);
  ASSERT_TRUE(rec.has_value()) << "the dying domain lingers while its grant is mapped";
  EXPECT_TRUE(rec->dying);
  // No new access to a dying domain's grants.
  EXPECT_EQ(MapOne(*back_, front, 10).status, GNTST_bad_domain);
  EXPECT_EQ(CopyOne(*back_, GrantToLocal(front, 10, 0, 0, 0, 8)), GNTST_bad_domain);
  // The existing mapping still reads the page (the hypervisor kept the RAM).
  EXPECT_EQ(front_->page(5)[100], 0xAB);
  EXPECT_EQ(UnmapOne(*back_, r.handle), GNTST_okay);
  EXPECT_FALSE(hv_->Find(front).has_value()) << "reclaimed once the last mapping went";
  auto drops = hv_->TakeRamDrops(back_->session, 16);
  ASSERT_EQ(drops.size(), 1u);
  EXPECT_EQ(drops[0], r.incarnation);
  // The domid can be reused now, with a new incarnation.
  (void)Make("next");
}

TEST_F(GrantTest, MapperKilledReleasesItsPins) {
  front_->Grant(10, back_->domid, 5);
  front_->Grant(11, back_->domid, 6, true);
  ASSERT_EQ(MapOne(*back_, front_->domid, 10).status, GNTST_okay);
  ASSERT_EQ(MapOne(*back_, front_->domid, 11, true).status, GNTST_okay);
  hv_->Detach(back_->session);
  EXPECT_EQ(front_->flags(10), GTF_permit_access);
  EXPECT_EQ(front_->flags(11), GTF_permit_access | GTF_readonly);
  EXPECT_EQ(EndGrant(front_->entry(10)), EndGrantResult::kEnded);
  EXPECT_FALSE(hv_->Find(back_->domid).has_value());
}

TEST_F(GrantTest, Dom0SessionsGetDisjointSlices) {
  auto a = Dom0();
  auto b = Dom0();
  ASSERT_TRUE(a && b);
  EXPECT_LE(a->info.ref_end, b->info.ref_first);
  EXPECT_LE(a->info.gfn_end, b->info.gfn_first);
  // A session's grants are revoked when it ends, unless mapped.
  a->Grant(a->info.ref_first, back_->domid, a->info.gfn_first);
  a->Grant(a->info.ref_first + 1, back_->domid, a->info.gfn_first);
  MapResult r = MapOne(*back_, kDom0, a->info.ref_first + 1);
  ASSERT_EQ(r.status, GNTST_okay);
  const uint32_t first = a->info.ref_first;
  hv_->Detach(a->session);
  EXPECT_EQ(b->flags(first), 0) << "revoked";
  EXPECT_NE(b->flags(first + 1) & GTF_permit_access, 0) << "mapped: stays until unmapped";
  // Its slot is not handed out while a grant in it is still mapped.
  auto c = Dom0();
  ASSERT_TRUE(c);
  EXPECT_NE(c->info.ref_first, first);
  EXPECT_EQ(UnmapOne(*back_, r.handle), GNTST_okay);
}

TEST_F(GrantTest, RemapOfAnEndedDom0SessionsGrantHoldsItsSliceForever) {
  // A backend that holds a grant of a dom0 session past the session's end must not be able to
  // pin it again (map or copy), or it could keep re-mapping it after each unmap and keep the
  // slice from ever being handed to a new session.
  auto a = Dom0();
  ASSERT_TRUE(a);
  const uint32_t ref = a->info.ref_first + 3;
  a->Grant(ref, back_->domid, a->info.gfn_first);
  MapResult r = MapOne(*back_, kDom0, ref, /*readonly=*/true);
  ASSERT_EQ(r.status, GNTST_okay);
  const uint32_t first = a->info.ref_first;
  hv_->Detach(a->session);
  EXPECT_EQ(MapOne(*back_, kDom0, ref, true).status, GNTST_general_error) << "no new pin";
  EXPECT_EQ(MapOne(*back_, kDom0, ref, false).status, GNTST_general_error) << "no upgrade";
  EXPECT_EQ(CopyOne(*back_, GrantToLocal(kDom0, ref, 0, 0, 0, 16)), GNTST_general_error);
  EXPECT_EQ(UnmapOne(*back_, r.handle), GNTST_okay);
  EXPECT_EQ(hv_->PinsForTest(kDom0, GrantRef(ref)), 0u);
  EXPECT_EQ(MapOne(*back_, kDom0, ref, true).status, GNTST_general_error) << "no re-map";
  // The slice is free again: the next session gets it, with its entries revoked.
  auto b = Dom0();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->info.ref_first, first);
  EXPECT_EQ(b->flags(ref), 0);
}

TEST_F(GrantTest, WritableUpgradeOfAnEntryRegrantedToAnotherDomain) {
  // _set_status_v1 checks type and domid on every status change, the writable upgrade of an
  // entry pinned read-only included: a frontend that re-granted its entry to someone else (or
  // revoked it) has not given the first mapper write access.
  auto other = Make("other");
  ASSERT_TRUE(other);
  front_->Grant(10, back_->domid, 5);
  MapResult ro = MapOne(*back_, front_->domid, 10, /*readonly=*/true);
  ASSERT_EQ(ro.status, GNTST_okay);
  front_->Grant(10, other->domid, 5);  // rewritten in place while pinned
  EXPECT_EQ(MapOne(*back_, front_->domid, 10, /*readonly=*/false).status, GNTST_general_error);
  EXPECT_EQ(CopyOne(*back_, LocalToGrant(0, 0, front_->domid, 10, 0, 16)), GNTST_general_error);
  EXPECT_EQ(front_->flags(10) & GTF_writing, 0);
  // Revoked by clearing GTF_permit_access by hand: no writable pin either.
  __atomic_store_n(&front_->entry(10)->flags, uint16_t{GTF_reading}, __ATOMIC_RELEASE);
  front_->entry(10)->domid = static_cast<uint16_t>(back_->domid.value);
  EXPECT_EQ(MapOne(*back_, front_->domid, 10, /*readonly=*/false).status, GNTST_general_error);
  EXPECT_EQ(UnmapOne(*back_, ro.handle), GNTST_okay);
  EXPECT_EQ(hv_->PinsForTest(front_->domid, GrantRef(10)), 0u);
}

TEST_F(GrantTest, RamFdLostToDescriptorExhaustionIsHandedOutAgain) {
  // The daemon could not dup the granter's RAM fd for the reply (another domain exhausted its
  // descriptors): unless the core forgets it was sent, this backend never gets that RAM again.
  front_->Grant(10, back_->domid, 5);
  front_->Grant(11, back_->domid, 6);
  MapResult r = MapOne(*back_, front_->domid, 10);
  ASSERT_EQ(r.status, GNTST_okay);
  ASSERT_GE(r.ram_fd, 0);
  EXPECT_EQ(UnmapOne(*back_, r.handle), GNTST_okay);  // what the daemon does on EMFILE
  hv_->RamNotSent(back_->session, r.incarnation);
  MapResult again = MapOne(*back_, front_->domid, 11);
  ASSERT_EQ(again.status, GNTST_okay);
  EXPECT_GE(again.ram_fd, 0) << "the RAM is sent again";
  EXPECT_EQ(UnmapOne(*back_, again.handle), GNTST_okay);
}

TEST_F(GrantTest, Dom0SlotsRunOut) {
  std::vector<std::unique_ptr<TestDomain>> sessions;
  for (uint32_t i = 0; i < kDom0Slots; ++i) sessions.push_back(Dom0());
  auto more = hv_->Attach(kDom0, hv_->Find(kDom0)->incarnation);
  ASSERT_FALSE(more.has_value());
  EXPECT_EQ(more.error().code, EBUSY);
}

}  // namespace
}  // namespace xpv::platform::sim::testing
