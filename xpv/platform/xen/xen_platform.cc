#include "xpv/platform/xen/xen_platform.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <string>

extern "C" {
#include <xenctrl.h>
#include <xenevtchn.h>
#include <xenforeignmemory.h>
#include <xengnttab.h>
#include <xentoollog.h>
}

#include "xpv/base/unique_fd.h"
#include "xpv/platform/xen/xen_logic.h"

namespace xpv::platform::xen {

namespace {

constexpr const char* kEvtchnDevice = "/dev/xen/evtchn";
constexpr const char* kXsdKva = "/proc/xen/xsd_kva";
constexpr const char* kXsdPort = "/proc/xen/xsd_port";

int Prot(Access a) {
  return a == Access::kReadOnly ? PROT_READ : PROT_READ | PROT_WRITE;
}

Status SetNonBlocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return Err(errno, "fcntl");
  return Ok();
}

// ---------------------------------------------------------------------------------------------
// Guest memory: a pool of this process's pages. A slot is either ours (anonymous memory) or
// shared with a peer by gntalloc.

class XenMemory final : public GuestMemory, public GrantTable {
 public:
  explicit XenMemory(xengntshr_handle* gntshr) : gntshr_(gntshr) {}
  ~XenMemory() override {
    for (auto& [first, r] : regions_) Release(r);
  }

  Result<Gfn> AllocPages(size_t count) override {
    if (count == 0) return Err(EINVAL, "zero pages");
    void* p = ::mmap(nullptr, count * kPageSize, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return Err(errno, "mmap");
    std::lock_guard lock(mu_);
    return AddRegion(Region{static_cast<uint8_t*>(p), count, {}, {}, 0, Access::kReadWrite});
  }

  void FreePages(Gfn first, size_t count) override {
    std::lock_guard lock(mu_);
    auto it = regions_.find(first.value);
    if (it == regions_.end() || it->second.count != count || !it->second.refs.empty()) return;
    Release(it->second);
    regions_.erase(it);
  }

  uint8_t* PageAddress(Gfn gfn) override {
    std::lock_guard lock(mu_);
    const Region* r = Find(gfn);
    return r ? r->base + (gfn.value - First(*r)) * kPageSize : nullptr;
  }

  size_t page_count() const override {
    std::lock_guard lock(mu_);
    return next_gfn_;
  }

  Result<SharedPages> Share(DomId peer, size_t count, Access access) {
    if (!gntshr_) return Err(ENODEV, "gntalloc not available (/dev/xen/gntalloc)");
    if (count == 0) return Err(EINVAL, "zero pages");
    std::vector<uint32_t> refs(count);
    void* p = xengntshr_share_pages(gntshr_, peer.value, static_cast<int>(count), refs.data(),
                                    access == Access::kReadWrite);
    if (!p) return Err(errno, "xengntshr_share_pages");
    SharedPages out;
    std::lock_guard lock(mu_);
    Region r{static_cast<uint8_t*>(p), count, {}, peer, 0, access};
    for (uint32_t ref : refs) r.refs.emplace_back(ref);
    out.refs = r.refs;
    out.first = AddRegion(std::move(r));
    return out;
  }

  // GrantTable
  Result<GrantRef> GrantAccess(DomId peer, Gfn gfn, Access access) override {
    std::lock_guard lock(mu_);
    const Region* r = Find(gfn);
    if (!r) return Err(EINVAL, "no such page");
    if (r->refs.empty() || r->peer != peer ||
        (access == Access::kReadWrite && r->access != Access::kReadWrite)) {
      return Err(EOPNOTSUPP, "Xen's gntalloc grants only pages it allocated: use SharePages");
    }
    return r->refs[gfn.value - First(*r)];
  }

  Status EndAccess(GrantRef ref) override {
    std::lock_guard lock(mu_);
    for (auto it = regions_.begin(); it != regions_.end(); ++it) {
      Region& r = it->second;
      for (GrantRef& g : r.refs) {
        if (g != ref || g == GrantRef(kEndedRef)) continue;
        g = GrantRef(kEndedRef);
        // gntalloc revokes every grant of the mapping when it is unmapped (deferred in the
        // kernel while the peer still maps it): unmap once every ref of the region has ended.
        if (++r.ended == r.refs.size()) {
          Release(r);
          regions_.erase(it);
        }
        return Ok();
      }
    }
    return Err(EINVAL, "no such grant");
  }

 private:
  static constexpr uint32_t kEndedRef = 0xFFFFFFFF;
  struct Region {
    uint8_t* base = nullptr;
    size_t count = 0;
    std::vector<GrantRef> refs;  // empty: our own memory; else gntalloc-shared with peer
    DomId peer;
    size_t ended = 0;
    Access access = Access::kReadWrite;
    uint64_t first = 0;
  };

  static uint64_t First(const Region& r) { return r.first; }

  Gfn AddRegion(Region r) {
    r.first = next_gfn_;
    next_gfn_ += r.count;
    const uint64_t first = r.first;
    regions_.emplace(first, std::move(r));
    return Gfn(first);
  }

  const Region* Find(Gfn gfn) const {
    auto it = regions_.upper_bound(gfn.value);
    if (it == regions_.begin()) return nullptr;
    --it;
    const Region& r = it->second;
    return gfn.value < r.first + r.count ? &r : nullptr;
  }

  void Release(Region& r) {
    if (r.refs.empty())
      ::munmap(r.base, r.count * kPageSize);
    else
      xengntshr_unshare(gntshr_, r.base, static_cast<uint32_t>(r.count));
  }

  xengntshr_handle* gntshr_;
  mutable std::mutex mu_;
  std::map<uint64_t, Region> regions_;  // first gfn -> region
  uint64_t next_gfn_ = 0;               // gfns are never reused: a stale Gfn finds nothing
};

// ---------------------------------------------------------------------------------------------
// Grant mapping and copy (gntdev).

class XenMapping final : public GrantMapping {
 public:
  explicit XenMapping(xengnttab_handle* xgt) : xgt_(xgt) {}
  ~XenMapping() override {
    for (auto [addr, count] : regions_) xengnttab_unmap(xgt_, addr, count);
  }
  void Init(size_t n) {
    status_.assign(n, GrantStatus::kGeneralError);
    pages_.assign(n, nullptr);
  }
  void Set(size_t i, GrantStatus s, uint8_t* page) {
    status_[i] = s;
    pages_[i] = page;
  }
  void AddRegion(void* addr, uint32_t count) { regions_.emplace_back(addr, count); }

 private:
  xengnttab_handle* xgt_;
  std::vector<std::pair<void*, uint32_t>> regions_;
};

class XenMapper final : public GrantMapper {
 public:
  XenMapper(xengnttab_handle* xgt, XenMemory& memory) : xgt_(xgt), memory_(memory) {}

  Result<std::unique_ptr<GrantMapping>> Map(std::span<const MapRequest> requests) override {
    auto mapping = std::make_unique<XenMapping>(xgt_);
    mapping->Init(requests.size());
    if (requests.empty()) return std::unique_ptr<GrantMapping>(std::move(mapping));
    bool same_access = true;
    std::vector<uint32_t> domids, refs;
    for (const MapRequest& r : requests) {
      same_access = same_access && r.access == requests[0].access;
      domids.push_back(r.domid.value);
      refs.push_back(r.ref.value);
    }
    const uint32_t n = static_cast<uint32_t>(requests.size());
    if (same_access) {
      // One mmap for the batch: all or nothing (gntdev), so a failure is retried entry by
      // entry below to tell the good entries from the bad.
      void* base =
          xengnttab_map_grant_refs(xgt_, n, domids.data(), refs.data(), Prot(requests[0].access));
      if (base) {
        mapping->AddRegion(base, n);
        for (uint32_t i = 0; i < n; ++i)
          mapping->Set(i, GrantStatus::kOkay, static_cast<uint8_t*>(base) + i * kPageSize);
        return std::unique_ptr<GrantMapping>(std::move(mapping));
      }
    }
    for (uint32_t i = 0; i < n; ++i) {
      void* p = xengnttab_map_grant_ref(xgt_, domids[i], refs[i], Prot(requests[i].access));
      if (!p) {
        mapping->Set(i, GrantStatusFromErrno(errno), nullptr);
        continue;
      }
      mapping->AddRegion(p, 1);
      mapping->Set(i, GrantStatus::kOkay, static_cast<uint8_t*>(p));
    }
    return std::unique_ptr<GrantMapping>(std::move(mapping));
  }

  Status Copy(std::span<CopyOp> ops) override {
    std::vector<xengnttab_grant_copy_segment_t> segs;
    std::vector<size_t> index;  // segs[k] is ops[index[k]]
    segs.reserve(ops.size());
    for (size_t i = 0; i < ops.size(); ++i) {
      CopyOp& op = ops[i];
      xengnttab_grant_copy_segment_t seg{};
      // grant_table.h gnttab_copy: "the copy may not cross a page boundary" on either side.
      if (op.source.offset + op.len > kPageSize || op.dest.offset + op.len > kPageSize) {
        op.status = GrantStatus::kBadCopyArg;
        continue;
      }
      GrantStatus st = GrantStatus::kOkay;
      Fill(op.source, &seg.source, GNTCOPY_source_gref, &seg.flags, &st);
      Fill(op.dest, &seg.dest, GNTCOPY_dest_gref, &seg.flags, &st);
      if (st != GrantStatus::kOkay) {
        op.status = st;
        continue;
      }
      seg.len = op.len;
      segs.push_back(seg);
      index.push_back(i);
    }
    if (segs.empty()) return Ok();
    if (xengnttab_grant_copy(xgt_, static_cast<uint32_t>(segs.size()), segs.data()) != 0)
      return Err(errno, "xengnttab_grant_copy");
    for (size_t k = 0; k < segs.size(); ++k)
      ops[index[k]].status = static_cast<GrantStatus>(segs[k].status);
    return Ok();
  }

 private:
  void Fill(const CopyPtr& p, xengnttab_grant_copy_segment_t::xengnttab_copy_ptr* out,
            uint16_t gref_flag, uint16_t* flags, GrantStatus* st) {
    if (p.kind == CopyPtr::Kind::kGrant) {
      out->foreign.ref = p.ref.value;
      out->foreign.offset = p.offset;
      out->foreign.domid = static_cast<uint16_t>(p.domid.value);
      *flags |= gref_flag;
      return;
    }
    uint8_t* page = memory_.PageAddress(p.gfn);
    if (!page) {
      *st = GrantStatus::kBadVirtAddr;
      return;
    }
    out->virt = page + p.offset;
  }

  xengnttab_handle* xgt_;
  XenMemory& memory_;
};

// ---------------------------------------------------------------------------------------------
// Event channels (/dev/xen/evtchn). The device masks a port when it reports it pending and
// unmasks it on write: platform.h's NextPending/Unmask contract as is.

class XenEvents final : public EventChannels {
 public:
  explicit XenEvents(xenevtchn_handle* xce) : xce_(xce) {}
  ~XenEvents() override { xenevtchn_close(xce_); }

  Result<EvtchnPort> AllocUnbound(DomId remote) override {
    const int p = xenevtchn_bind_unbound_port(xce_, remote.value);
    if (p < 0) return Err(errno, "xenevtchn_bind_unbound_port");
    return EvtchnPort(static_cast<uint32_t>(p));
  }
  Result<EvtchnPort> BindInterdomain(DomId remote, EvtchnPort remote_port) override {
    const int p = xenevtchn_bind_interdomain(xce_, remote.value, remote_port.value);
    if (p < 0) return Err(errno, "xenevtchn_bind_interdomain");
    return EvtchnPort(static_cast<uint32_t>(p));
  }
  Status Notify(EvtchnPort port) override {
    if (xenevtchn_notify(xce_, port.value) != 0) return Err(errno, "xenevtchn_notify");
    return Ok();
  }
  Status Close(EvtchnPort port) override {
    if (xenevtchn_unbind(xce_, port.value) != 0) return Err(errno, "xenevtchn_unbind");
    return Ok();
  }
  Status Unmask(EvtchnPort port) override {
    if (xenevtchn_unmask(xce_, port.value) != 0) return Err(errno, "xenevtchn_unmask");
    return Ok();
  }
  int fd() const override { return xenevtchn_fd(xce_); }
  std::optional<EvtchnPort> NextPending() override {
    // The descriptor is non-blocking: EAGAIN means none pending.
    const int p = xenevtchn_pending(xce_);
    if (p < 0) return std::nullopt;
    return EvtchnPort(static_cast<uint32_t>(p));
  }

  Result<EvtchnPort> BindVirq(unsigned virq) {
    const int p = xenevtchn_bind_virq(xce_, virq);
    if (p < 0) return Err(errno, "xenevtchn_bind_virq");
    return EvtchnPort(static_cast<uint32_t>(p));
  }

 private:
  xenevtchn_handle* xce_;
};

Result<std::unique_ptr<XenEvents>> OpenEvents() {
  xenevtchn_handle* xce = xenevtchn_open(nullptr, 0);
  if (!xce) return Err(errno, "xenevtchn_open");
  auto ev = std::make_unique<XenEvents>(xce);
  XPV_TRY(SetNonBlocking(ev->fd()));
  return ev;
}

// ---------------------------------------------------------------------------------------------
// Domain control (privcmd, domctls) and foreign pages.

class MappedPage final : public ForeignPage {
 public:
  using Unmap = void (*)(void* ctx, void* addr);
  MappedPage(void* addr, void* ctx, Unmap unmap) : addr_(addr), ctx_(ctx), unmap_(unmap) {}
  ~MappedPage() override { unmap_(ctx_, addr_); }
  uint8_t* data() override { return static_cast<uint8_t*>(addr_); }

 private:
  void* addr_;
  void* ctx_;
  Unmap unmap_;
};

class XenControl final : public DomainControl {
 public:
  XenControl(xc_interface* xch, xenforeignmemory_handle* fmem, std::unique_ptr<XenEvents> virq)
      : xch_(xch), fmem_(fmem), virq_(std::move(virq)) {}
  ~XenControl() override {
    virq_.reset();
    xenforeignmemory_close(fmem_);
    xc_interface_close(xch_);
  }

  Status Init(bool watch_deaths) {
    // VIRQ_DOM_EXC: Xen raises it when a domain shuts down, crashes or is destroyed.
    if (watch_deaths) {
      auto port = virq_->BindVirq(VIRQ_DOM_EXC);
      if (!port && port.error().code == EEXIST)
        return Err(EEXIST, "VIRQ_DOM_EXC is bound already: is another xenstored running?");
      XPV_TRY(port);
    }
    XPV_ASSIGN_OR_RETURN(std::vector<DomainState> scan, Scan());
    tracker_.Reset(scan);
    return Ok();
  }

  Result<std::vector<DomainInfo>> List() override {
    XPV_ASSIGN_OR_RETURN(std::vector<xc_domaininfo_t> infos, GetInfos());
    std::vector<DomainInfo> out;
    for (const xc_domaininfo_t& i : infos) {
      DomainInfo d;
      d.domid = DomId(i.domain);
      d.memory_kib = i.tot_pages * (kPageSize / 1024);
      d.vcpus = i.max_vcpu_id == XEN_INVALID_MAX_VCPU_ID ? 0 : i.max_vcpu_id + 1;
      d.dying = (i.flags & XEN_DOMINF_dying) != 0;
      d.shutdown = (i.flags & XEN_DOMINF_shutdown) != 0;
      out.push_back(std::move(d));
    }
    return out;
  }

  Status Destroy(DomId domid) override {
    if (xc_domain_destroy(xch_, domid.value) != 0) return Err(errno, "xc_domain_destroy");
    return Ok();
  }

  Result<std::unique_ptr<ForeignPage>> MapForeign(DomId domid, Gfn gfn) override {
    const xen_pfn_t pfn = gfn.value;
    int err = 0;
    void* p = xenforeignmemory_map(fmem_, domid.value, PROT_READ | PROT_WRITE, 1, &pfn, &err);
    if (!p) return Err(errno, "xenforeignmemory_map");
    if (err != 0) {
      xenforeignmemory_unmap(fmem_, p, 1);
      return Err(err < 0 ? -err : err, "xenforeignmemory_map: frame");
    }
    return std::unique_ptr<ForeignPage>(new MappedPage(p, fmem_, [](void* ctx, void* addr) {
      xenforeignmemory_unmap(static_cast<xenforeignmemory_handle*>(ctx), addr, 1);
    }));
  }

  int death_fd() const override { return virq_->fd(); }

  std::vector<DomId> TakeDead() override {
    // Xen's handle_event(): "We scan all domains rather than use the information given here."
    while (std::optional<EvtchnPort> p = virq_->NextPending()) (void)virq_->Unmask(*p);
    auto scan = Scan();
    if (!scan) return {};
    return tracker_.Update(*scan);
  }

  std::vector<DomId> TakeShutdown() override { return tracker_.TakeShutdown(); }

 private:
  Result<std::vector<xc_domaininfo_t>> GetInfos() {
    std::vector<xc_domaininfo_t> all;
    constexpr unsigned kChunk = 256;
    std::vector<xc_domaininfo_t> buf(kChunk);
    uint32_t first = 0;
    for (;;) {
      const int n = xc_domain_getinfolist(xch_, first, kChunk, buf.data());
      if (n < 0) return Err(errno, "xc_domain_getinfolist");
      all.insert(all.end(), buf.begin(), buf.begin() + n);
      if (n < static_cast<int>(kChunk)) break;
      first = buf[n - 1].domain + 1u;
    }
    return all;
  }

  Result<std::vector<DomainState>> Scan() {
    XPV_ASSIGN_OR_RETURN(std::vector<xc_domaininfo_t> infos, GetInfos());
    std::vector<DomainState> out;
    for (const xc_domaininfo_t& i : infos) {
      out.push_back({DomId(i.domain), (i.flags & XEN_DOMINF_dying) != 0,
                     (i.flags & XEN_DOMINF_shutdown) != 0});
    }
    return out;
  }

  xc_interface* xch_;
  xenforeignmemory_handle* fmem_;
  std::unique_ptr<XenEvents> virq_;
  DeathTracker tracker_;
};

// ---------------------------------------------------------------------------------------------

bool IsControlDomain() {
  std::ifstream caps("/proc/xen/capabilities");
  std::string s;
  std::getline(caps, s);
  return s.find("control_d") != std::string::npos;
}

class XenPlatformImpl final : public XenPlatform {
 public:
  XenPlatformImpl(DomId self, xengnttab_handle* xgt, xengntshr_handle* gntshr,
                  std::unique_ptr<XenEvents> events)
      : self_(self),
        xgt_(xgt),
        gntshr_(gntshr),
        memory_(std::make_unique<XenMemory>(gntshr)),
        mapper_(std::make_unique<XenMapper>(xgt, *memory_)),
        events_(std::move(events)) {}
  ~XenPlatformImpl() override {
    control_.reset();
    events_.reset();
    mapper_.reset();
    memory_.reset();
    if (gntshr_) xengntshr_close(gntshr_);
    xengnttab_close(xgt_);
  }

  void set_control(std::unique_ptr<XenControl> c) { control_ = std::move(c); }

  DomId self() const override { return self_; }
  GuestMemory& memory() override { return *memory_; }
  GrantTable& grants() override { return *memory_; }
  GrantMapper& mapper() override { return *mapper_; }
  EventChannels& events() override { return *events_; }
  DomainControl* control() override { return control_.get(); }

  Result<SharedPages> SharePages(DomId peer, size_t count, Access access) override {
    return memory_->Share(peer, count, access);
  }

  Result<LocalStoreRing> OpenLocalStoreRing() override {
    // xenstored_linux.c xenbus_evtchn(): the port as text; xenbus_map(): mmap of xsd_kva.
    std::ifstream pf(kXsdPort);
    unsigned long port = 0;
    if (!(pf >> port) || port == 0) return Err(ENOENT, "cannot read /proc/xen/xsd_port");
    UniqueFd fd(::open(kXsdKva, O_RDWR | O_CLOEXEC));
    if (!fd.valid()) return Err(errno, "open /proc/xen/xsd_kva");
    void* p = ::mmap(nullptr, kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (p == MAP_FAILED) return Err(errno, "mmap /proc/xen/xsd_kva");
    LocalStoreRing ring;
    ring.page = std::make_unique<MappedPage>(p, nullptr,
                                             [](void*, void* addr) { ::munmap(addr, kPageSize); });
    ring.port = EvtchnPort(static_cast<uint32_t>(port));
    return ring;
  }

 private:
  DomId self_;
  xengnttab_handle* xgt_;
  xengntshr_handle* gntshr_;
  std::unique_ptr<XenMemory> memory_;
  std::unique_ptr<XenMapper> mapper_;
  std::unique_ptr<XenEvents> events_;
  std::unique_ptr<XenControl> control_;
};

}  // namespace

Result<std::unique_ptr<XenPlatform>> ConnectXen(const XenOptions& options) {
  if (::access(kEvtchnDevice, F_OK) != 0)
    return Err(ENOENT, "not running on Xen: /dev/xen/evtchn missing");
  XPV_ASSIGN_OR_RETURN(std::unique_ptr<XenEvents> events, OpenEvents());
  // A map or copy that fails because of a peer's bad grant is reported as a status, not logged:
  // the libraries' own log is kept for critical errors, or a guest could flood it.
  static xentoollog_logger_stdiostream* const quiet =
      xtl_createlogger_stdiostream(stderr, XTL_CRITICAL, 0);
  // SAFETY: xentoollog.h's loggers begin with their xentoollog_logger vtable; the header's own
  // usage is this cast.
  auto* logger = reinterpret_cast<xentoollog_logger*>(quiet);
  xengnttab_handle* xgt = xengnttab_open(logger, 0);
  if (!xgt) return Err(errno, "xengnttab_open (/dev/xen/gntdev)");
  // As Xen's xenstored: one grant per domain may be mapped at once by the store alone.
  xengnttab_set_max_grants(xgt, 65536);
  // gntalloc is optional: a backend-only process never shares its own pages.
  xengntshr_handle* gntshr = xengntshr_open(logger, 0);

  const bool control = IsControlDomain();
  DomId self = kDomIdSelf;
  if (control) {
    self = kDom0;
  } else if (const char* env = std::getenv("XPV_DOMID")) {
    self = DomId(static_cast<uint32_t>(std::strtoul(env, nullptr, 10)));
  }
  auto platform = std::make_unique<XenPlatformImpl>(self, xgt, gntshr, std::move(events));
  if (control) {
    xc_interface* xch = xc_interface_open(logger, logger, 0);
    xenforeignmemory_handle* fmem = xch ? xenforeignmemory_open(logger, 0) : nullptr;
    auto virq = OpenEvents();
    if (xch && fmem && virq) {
      auto c = std::make_unique<XenControl>(xch, fmem, std::move(*virq));
      XPV_TRY(c->Init(options.watch_deaths));
      platform->set_control(std::move(c));
    } else {
      if (fmem) xenforeignmemory_close(fmem);
      if (xch) xc_interface_close(xch);
    }
  }
  return std::unique_ptr<XenPlatform>(std::move(platform));
}

}  // namespace xpv::platform::xen
