// Grant tables v1: map, unmap, copy. Follows common/grant_table.c (map_grant_ref,
// unmap_common, acquire_grant_for_copy, gnttab_copy_one); the status codes are grant_table.h's
// GNTST_*.
#include <cstring>

#include "xpv/base/check.h"
#include "xpv/platform/sim/grant_entry.h"
#include "xpv/platform/sim/hypervisor.h"
#include "xpv/platform/sim/hypervisor_internal.h"

namespace xpv::platform::sim {

// Pins (granter, ref) for `mapper`, setting GTF_reading/GTF_writing in the shared entry on the
// first pin of each kind, and captures the frame on the very first. Used by map and copy alike.
int16_t Hypervisor::Acquire(Domain& granter, uint32_t ref, DomId mapper, bool readonly,
                            bool mapping, uint64_t* gfn) {
  XPV_CHECK(ref < granter.nr_grants);
  grant_entry_v1_t* e = &granter.gnttab[ref];
  auto it = granter.active.find(ref);
  ActiveEntry* act = it == granter.active.end() ? nullptr : &it->second;
  const bool pinned = act != nullptr;

  // map_grant_ref: "If already pinned, check the active domid and avoid refcnt overflow."
  if (pinned && act->mapper != mapper) return GNTST_general_error;
  // An ended dom0 session's grants stay pinned until unmapped (EndSession), but nobody gains a
  // new pin on them: once the last one goes, the slice can be handed to a new session.
  if (granter.domid == kDom0 && Dom0RefOrphaned(granter, ref)) return GNTST_general_error;
  if (pinned && (readonly ? act->readers : act->writers) >= kMaxPinsPerEntry) {
    return GNTST_general_error;
  }
  const bool set_status = !pinned || (!readonly && act->writers == 0);
  if (set_status) {
    int16_t st = SetStatus(e, readonly, mapping, static_cast<uint16_t>(mapper.value));
    if (st != GNTST_okay) return st;
  }
  if (!pinned) {
    const uint32_t frame = LoadFrame(e);
    if (frame >= granter.pages) {
      // get_paged_frame failed: undo the flags we just set (map_grant_ref's undo_out).
      ClearFlags(e, static_cast<uint16_t>(GTF_reading | (readonly ? 0 : GTF_writing)));
      return GNTST_bad_page;
    }
    act = &granter.active[ref];
    act->mapper = mapper;
    act->gfn = frame;
  }
  (readonly ? act->readers : act->writers) += 1;
  granter.pinned += 1;
  *gfn = act->gfn;
  return GNTST_okay;
}

// unmap_common_complete: drops one pin; clears GTF_writing when the last writer goes and
// GTF_reading when the last pin goes.
void Hypervisor::Release(Domain& granter, uint32_t ref, bool readonly) {
  auto it = granter.active.find(ref);
  XPV_CHECK(it != granter.active.end());
  ActiveEntry& act = it->second;
  uint32_t& count = readonly ? act.readers : act.writers;
  XPV_CHECK(count > 0 && granter.pinned > 0);
  count -= 1;
  granter.pinned -= 1;
  grant_entry_v1_t* e = &granter.gnttab[ref];
  if (!readonly && act.writers == 0) ClearFlags(e, GTF_writing);
  if (act.readers == 0 && act.writers == 0) {
    ClearFlags(e, GTF_reading);
    granter.active.erase(it);
  }
}

void Hypervisor::Map(SessionId session, std::span<const MapOp> ops, std::span<MapResult> results) {
  XPV_CHECK(ops.size() == results.size());
  Session* s = FindSession(session);
  for (size_t i = 0; i < ops.size(); ++i) {
    results[i] = MapResult{};
    if (s == nullptr) {
      results[i].status = GNTST_general_error;
      continue;
    }
    MapOne(*s, ops[i], results[i]);
  }
}

void Hypervisor::MapOne(Session& s, const MapOp& op, MapResult& out) {
  // Copy mode is enforced here, not only in the client library: the domain never gets a mapping.
  if (s.mode != MappingMode::kMap) {
    out.status = GNTST_permission_denied;
    return;
  }
  Domain* g = LiveDomain(op.domid.value);
  if (g == nullptr) {
    out.status = GNTST_bad_domain;
    return;
  }
  if (op.ref.value >= g->nr_grants) {
    out.status = GNTST_bad_gntref;
    return;
  }
  if (s.live_maps >= kMaxMaptrack) {
    out.status = GNTST_no_space;
    return;
  }
  uint64_t gfn = 0;
  int16_t st = Acquire(*g, op.ref.value, s.domid, op.readonly, /*mapping=*/true, &gfn);
  if (st != GNTST_okay) {
    out.status = st;
    return;
  }
  uint32_t handle;
  if (!s.free_handles.empty()) {
    handle = s.free_handles.back();
    s.free_handles.pop_back();
  } else {
    handle = static_cast<uint32_t>(s.maptrack.size());
    s.maptrack.emplace_back();
  }
  s.maptrack[handle] = MapTrack{true, op.readonly, g->domid, g->incarnation, op.ref.value};
  s.live_maps += 1;

  out.status = GNTST_okay;
  out.handle = handle;
  out.gfn = gfn;
  out.incarnation = g->incarnation;
  out.ram_pages = g->pages;
  if (s.ram_sent.insert(g->incarnation).second) out.ram_fd = g->ram.fd();
}

void Hypervisor::Unmap(SessionId session, std::span<const uint32_t> handles,
                       std::span<int16_t> status) {
  XPV_CHECK(handles.size() == status.size());
  Session* s = FindSession(session);
  for (size_t i = 0; i < handles.size(); ++i) {
    status[i] = s == nullptr ? GNTST_general_error : UnmapOne(*s, handles[i]);
  }
}

int16_t Hypervisor::UnmapOne(Session& s, uint32_t handle) {
  if (handle >= s.maptrack.size() || !s.maptrack[handle].live) return GNTST_bad_handle;
  MapTrack m = s.maptrack[handle];
  s.maptrack[handle] = MapTrack{};
  s.free_handles.push_back(handle);
  s.live_maps -= 1;
  // A pinned granter is never freed, so it is still here (perhaps dying).
  Domain* g = FindDomain(m.granter);
  XPV_CHECK(g != nullptr && g->incarnation == m.incarnation);
  Release(*g, m.ref, m.readonly);
  MaybeFree(*g);
  return GNTST_okay;
}

void Hypervisor::Copy(SessionId session, std::span<gnttab_copy_t> ops) {
  Session* s = FindSession(session);
  for (auto& op : ops) {
    if (s == nullptr) {
      op.status = GNTST_general_error;
      continue;
    }
    CopyOne(*s, op);
  }
}

void Hypervisor::CopyOne(Session& s, gnttab_copy_t& op) {
  // Read the guest's op once into locals; everything below uses only these.
  const bool src_gref = (op.flags & GNTCOPY_source_gref) != 0;
  const bool dst_gref = (op.flags & GNTCOPY_dest_gref) != 0;
  const uint32_t len = op.len;
  const uint32_t src_off = op.source.offset, dst_off = op.dest.offset;
  const uint16_t src_domid = op.source.domid, dst_domid = op.dest.domid;
  const uint64_t src_val = src_gref ? op.source.u.ref : op.source.u.gmfn;
  const uint64_t dst_val = dst_gref ? op.dest.u.ref : op.dest.u.gmfn;

  // gnttab_copy_buf: "copy beyond page area". Checked first: nothing is pinned for a bad op.
  if (src_off + len > kPageSize || dst_off + len > kPageSize) {
    op.status = GNTST_bad_copy_arg;
    return;
  }

  struct Side {
    Domain* granter = nullptr;  // set when a grant was acquired
    uint32_t ref = 0;
    uint8_t* page = nullptr;
  };
  Domain* self = FindDomain(s.domid);
  XPV_CHECK(self != nullptr);

  auto resolve = [&](bool gref, uint16_t domid, uint64_t val, bool readonly,
                     Side& side) -> int16_t {
    if (!gref) {
      // gnttab_copy_lock_domain: "Only the local domain may reference via frame."
      if (domid != DOMID_SELF && domid != s.domid.value) return GNTST_permission_denied;
      if (val >= self->pages) return GNTST_bad_page;
      side.page = self->ram.data() + val * kPageSize;
      return GNTST_okay;
    }
    // gnttab_copy_lock_domain() takes DOMID_SELF for the caller (rcu_lock_domain_by_any_id).
    Domain* g = LiveDomain(domid == DOMID_SELF ? static_cast<uint16_t>(s.domid.value) : domid);
    if (g == nullptr) return GNTST_bad_domain;
    if (val >= g->nr_grants) return GNTST_bad_gntref;
    uint64_t gfn = 0;
    int16_t st =
        Acquire(*g, static_cast<uint32_t>(val), s.domid, readonly, /*mapping=*/false, &gfn);
    if (st != GNTST_okay) return st;
    side.granter = g;
    side.ref = static_cast<uint32_t>(val);
    side.page = g->ram.data() + gfn * kPageSize;
    return GNTST_okay;
  };

  Side src, dst;
  int16_t st = resolve(src_gref, src_domid, src_val, /*readonly=*/true, src);
  if (st == GNTST_okay) {
    st = resolve(dst_gref, dst_domid, dst_val, /*readonly=*/false, dst);
    if (st == GNTST_okay && len > 0) {
      // SAFETY: both ranges lie inside one page of a RAM mapping this process owns (offset + len
      // <= kPageSize, frame < pages). The guests may write these pages concurrently, exactly as
      // with Xen's copy; memmove because source and destination may be the same page.
      std::memmove(dst.page + dst_off, src.page + src_off, len);
    }
  }
  if (dst.granter != nullptr) Release(*dst.granter, dst.ref, /*readonly=*/false);
  if (src.granter != nullptr) Release(*src.granter, src.ref, /*readonly=*/true);
  op.status = st;
}

}  // namespace xpv::platform::sim
