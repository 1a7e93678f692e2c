#include "xpv/platform/xen/xen_check.h"

#include <poll.h>

#include <cstring>
#include <string_view>

namespace xpv::platform::xen {

namespace {

class Checker {
 public:
  void Add(std::string name, bool ok, std::string detail = {}) {
    results_.push_back({std::move(name), ok, std::move(detail)});
  }
  template <typename T>
  bool AddResult(std::string name, const Result<T>& r) {
    Add(std::move(name), r.has_value(), r ? "" : Describe(r.error()));
    return r.has_value();
  }
  static std::string Describe(const Error& e) {
    return std::string(e.message) + " (" + std::strerror(e.code) + ")";
  }
  std::vector<CheckResult> Take() { return std::move(results_); }

 private:
  std::vector<CheckResult> results_;
};

bool Readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) == 1;
}

// Waits for `want` on the platform's descriptor; other pending ports are unmasked and skipped.
bool WaitPending(EventChannels& ev, EvtchnPort want) {
  for (int i = 0; i < 50; ++i) {
    if (!Readable(ev.fd(), 100)) continue;
    while (std::optional<EvtchnPort> p = ev.NextPending()) {
      (void)ev.Unmask(*p);
      if (*p == want) return true;
    }
  }
  return false;
}

void CheckEvents(XenPlatform& p, Checker& c) {
  EventChannels& ev = p.events();
  auto unbound = ev.AllocUnbound(p.self());
  if (!c.AddResult("evtchn: alloc unbound for ourselves", unbound)) return;
  auto bound = ev.BindInterdomain(p.self(), *unbound);
  if (!c.AddResult("evtchn: bind interdomain to it", bound)) return;
  c.Add("evtchn: the bound port starts pending", WaitPending(ev, *bound));
  c.Add("evtchn: notify crosses to the other end", ev.Notify(*bound) && WaitPending(ev, *unbound));
  c.Add("evtchn: and back", ev.Notify(*unbound) && WaitPending(ev, *bound));
  // NextPending masks the port it reports: a second notify is held until Unmask.
  bool held = false;
  if (ev.Notify(*unbound) && Readable(ev.fd(), 2000)) {
    std::optional<EvtchnPort> first = ev.NextPending();
    if (first == *bound) {
      (void)ev.Notify(*unbound);
      held = !ev.NextPending().has_value();
      (void)ev.Unmask(*bound);
      held = held && WaitPending(ev, *bound);
    }
  }
  c.Add("evtchn: a reported port stays masked until Unmask", held);
  c.Add("evtchn: close both ends", ev.Close(*bound) && ev.Close(*unbound));
}

void CheckGrants(XenPlatform& p, Checker& c) {
  GuestMemory& mem = p.memory();
  auto plain = mem.AllocPages(1);
  if (!c.AddResult("memory: alloc a pool page", plain)) return;
  auto refused = p.grants().GrantAccess(p.self(), *plain, Access::kReadWrite);
  c.Add("grant: a plain pool page is EOPNOTSUPP (gntalloc grants its own pages)",
        !refused && refused.error().code == EOPNOTSUPP);

  auto shared = p.SharePages(p.self(), 2, Access::kReadWrite);
  if (!c.AddResult("grant: SharePages(self, 2) through gntalloc", shared)) return;
  const Gfn g0 = shared->first;
  auto ref0 = p.grants().GrantAccess(p.self(), g0, Access::kReadWrite);
  c.Add("grant: GrantAccess on a shared page returns its ref", ref0 && *ref0 == shared->refs[0]);
  std::memset(mem.PageAddress(g0), 0xA5, kPageSize);
  std::memcpy(mem.PageAddress(g0), "xpv-xen-check", 13);

  MapRequest reqs[] = {{p.self(), shared->refs[0], Access::kReadWrite},
                       {p.self(), shared->refs[1], Access::kReadOnly},
                       {p.self(), GrantRef(0x7ffff), Access::kReadOnly}};
  {
    auto one = p.mapper().Map(std::span(reqs, 1));
    bool same = one && (*one)->status(0) == GrantStatus::kOkay &&
                std::memcmp((*one)->page(0), mem.PageAddress(g0), kPageSize) == 0;
    c.Add("map: our own grant through gntdev shows the same bytes", same);
    if (same) {
      (*one)->page(0)[100] = 0x5A;
      c.Add("map: a write through the mapping reaches the granted page",
            mem.PageAddress(g0)[100] == 0x5A);
    }
  }
  {
    auto batch = p.mapper().Map(reqs);
    bool ok = batch && (*batch)->size() == 3 && (*batch)->status(0) == GrantStatus::kOkay &&
              (*batch)->status(1) == GrantStatus::kOkay &&
              (*batch)->status(2) != GrantStatus::kOkay && (*batch)->page(2) == nullptr;
    c.Add("map: a mixed batch gives per-entry status (bad ref not okay)", ok,
          batch && (*batch)->size() == 3 ? GrantStatusName((*batch)->status(2)) : "");
  }

  CopyOp ops[2];
  ops[0].source = {CopyPtr::Kind::kGrant, p.self(), shared->refs[0], {}, 0};
  ops[0].dest = {CopyPtr::Kind::kLocal, {}, {}, *plain, 0};
  ops[0].len = kPageSize;
  ops[1] = ops[0];
  ops[1].dest.offset = 16;  // 16 + 4096 crosses the page
  Status st = p.mapper().Copy(ops);
  c.Add("copy: grant -> pool page",
        st && ops[0].status == GrantStatus::kOkay &&
            std::memcmp(mem.PageAddress(*plain), mem.PageAddress(g0), kPageSize) == 0,
        st ? GrantStatusName(ops[0].status) : Checker::Describe(st.error()));
  c.Add("copy: crossing a page is GNTST_bad_copy_arg", ops[1].status == GrantStatus::kBadCopyArg);

  c.Add("grant: EndAccess of both refs",
        p.grants().EndAccess(shared->refs[0]) && p.grants().EndAccess(shared->refs[1]));
  c.Add("grant: the pool forgets ended pages", mem.PageAddress(g0) == nullptr);
  mem.FreePages(*plain, 1);
}

void CheckPeer(XenPlatform& p, const CheckOptions& o, Checker& c) {
  if (!o.peer || !o.peer_ref) return;
  const MapRequest req{*o.peer, *o.peer_ref, Access::kReadOnly};
  auto m = p.mapper().Map(std::span(&req, 1));
  c.Add("map: domain " + std::to_string(o.peer->value) + "'s grant " +
            std::to_string(o.peer_ref->value) + " read-only",
        m && (*m)->status(0) == GrantStatus::kOkay,
        m ? GrantStatusName((*m)->status(0)) : Checker::Describe(m.error()));
  CopyOp op;
  auto page = p.memory().AllocPages(1);
  if (!page) return;
  op.source = {CopyPtr::Kind::kGrant, *o.peer, *o.peer_ref, {}, 0};
  op.dest = {CopyPtr::Kind::kLocal, {}, {}, *page, 0};
  op.len = kPageSize;
  Status st = p.mapper().Copy(std::span(&op, 1));
  c.Add("copy: domain " + std::to_string(o.peer->value) + "'s grant into a pool page",
        st && op.status == GrantStatus::kOkay &&
            (!m || std::memcmp(p.memory().PageAddress(*page), (*m)->page(0), kPageSize) == 0),
        st ? GrantStatusName(op.status) : Checker::Describe(st.error()));
  p.memory().FreePages(*page, 1);
}

void CheckControl(XenPlatform& p, const CheckOptions& o, Checker& c) {
  DomainControl* control = p.control();
  c.Add("control: available in dom0", control != nullptr);
  if (!control) return;
  auto list = control->List();
  if (!c.AddResult("control: list domains", list)) return;
  bool dom0 = false, peer = !o.peer;
  for (const DomainInfo& d : *list) {
    dom0 = dom0 || (d.domid == kDom0 && !d.dying);
    peer = peer || (d.domid == *o.peer && !d.dying);
  }
  c.Add("control: domain 0 listed, alive", dom0);
  c.Add("control: the peer listed, alive", peer);
  c.Add("control: no death pending", control->TakeDead().empty());
}

}  // namespace

std::vector<CheckResult> RunChecks(XenPlatform& platform, const CheckOptions& options) {
  Checker c;
  CheckEvents(platform, c);
  CheckGrants(platform, c);
  CheckPeer(platform, options, c);
  CheckControl(platform, options, c);
  return c.Take();
}

}  // namespace xpv::platform::xen
