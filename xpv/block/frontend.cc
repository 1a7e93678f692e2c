#include "xpv/block/frontend.h"

#include <poll.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "xpv/ring/ring_layout.h"

namespace xpv::block {

namespace {

namespace b = abi::blkif;
using Clock = std::chrono::steady_clock;
using xenbus::State;

constexpr size_t kAllocChunk = 32;
constexpr int kTransactionAttempts = 8;
constexpr int kEndAccessAttempts = 100;  // x 5 ms: half a second per grant at most
constexpr size_t kSyncChunk = 256 * 1024;

int MsLeft(Clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(left, 0, INT32_MAX));
}

uint8_t BlkifOperation(IoOp op) {
  switch (op) {
    case IoOp::kRead:
      return BLKIF_OP_READ;
    case IoOp::kWrite:
      return BLKIF_OP_WRITE;
    case IoOp::kFlush:
      return BLKIF_OP_FLUSH_DISKCACHE;
    case IoOp::kDiscard:
      return BLKIF_OP_DISCARD;
  }
  return BLKIF_OP_READ;
}

}  // namespace

Status StatusFromBlkif(int16_t status) {
  if (status == BLKIF_RSP_OKAY) return Ok();
  if (status == BLKIF_RSP_EOPNOTSUPP) return Err(EOPNOTSUPP, "the backend does not support it");
  return Err(EIO, "the backend answered BLKIF_RSP_ERROR");
}

// ---------------------------------------------------------------------------------------------
// Connecting.

Result<std::unique_ptr<BlkFront>> BlkFront::Connect(platform::Platform& platform,
                                                    platform::PortDispatcher& ports,
                                                    xenstore::Client& store,
                                                    const xenbus::DeviceId& id,
                                                    const FrontOptions& options) {
  if (options.queues == 0) return Err(EINVAL, "zero queues");
  XPV_ASSIGN_OR_RETURN(xenbus::FrontendLink link, xenbus::FrontendLink::Open(store, id));
  std::unique_ptr<BlkFront> f(new BlkFront(platform, ports, store, std::move(link), options));
  // Starting (over): a backend that closed after an earlier connection offers itself again.
  // Until the rings are published there is nothing to close: a failure just gives up.
  f->closed_ = true;
  XPV_TRY(f->link_.SwitchState(State::kInitialising));
  XPV_TRY(f->WaitForBackendReady());
  XPV_TRY(f->Negotiate());
  if (auto st = f->SetUpQueues(); !st) {
    f->Teardown();
    return st.error();
  }
  f->closed_ = false;
  if (auto st = f->Publish(); !st) {
    (void)f->Close();
    return st.error();
  }
  auto connected = f->link_.WaitForBackend({State::kConnected}, options.timeout_ms);
  if (!connected) {
    (void)f->Close();
    return connected.error();
  }
  if (auto st = f->link_.SwitchState(State::kConnected); !st) {
    (void)f->Close();
    return st.error();
  }
  return f;
}

Status BlkFront::WaitForBackendReady() {
  // A backend still Closing/Closed from an earlier connection answers our Initialising with
  // InitWait: keep waiting through those states until the deadline.
  const auto deadline = Clock::now() + std::chrono::milliseconds(options_.timeout_ms);
  while (true) {
    auto s = link_.WaitForBackend({State::kInitWait, State::kConnected}, MsLeft(deadline));
    if (s) return Ok();
    if (s.error().code != EPIPE) return s.error();
    if (MsLeft(deadline) == 0) return Err(ETIMEDOUT, "backend stayed closed");
    auto ev = store_.NextEvent(std::min(100, MsLeft(deadline)));
    if (!ev && ev.error().code != ETIMEDOUT) return ev.error();
  }
}

Status BlkFront::Negotiate() {
  Negotiated& n = negotiated_;
  XPV_ASSIGN_OR_RETURN(n.sectors, link_.ReadBackendUint("sectors", 0));
  if (n.sectors == 0) return Err(EINVAL, "backend's sectors is missing or 0");
  XPV_ASSIGN_OR_RETURN(uint64_t ss, link_.ReadBackendUint("sector-size", 512, 1u << 20));
  XPV_ASSIGN_OR_RETURN(uint64_t pss, link_.ReadBackendUint("physical-sector-size", ss, 1u << 20));
  if (ss != 512 && ss != 4096) return Err(EINVAL, "sector-size is neither 512 nor 4096");
  n.sector_size = static_cast<uint32_t>(ss);
  n.physical_sector_size = static_cast<uint32_t>(pss);
  XPV_ASSIGN_OR_RETURN(uint64_t info, link_.ReadBackendUint("info", 0, UINT32_MAX));
  n.info = std::to_string(info);
  n.read_only = (info & VDISK_READONLY) != 0;
  XPV_ASSIGN_OR_RETURN(uint64_t flush, link_.ReadBackendUint("feature-flush-cache", 0, 1));
  XPV_ASSIGN_OR_RETURN(uint64_t discard, link_.ReadBackendUint("feature-discard", 0, 1));
  n.flush = flush == 1;
  n.discard = discard == 1;

  XPV_ASSIGN_OR_RETURN(uint64_t max_queues,
                       link_.ReadBackendUint("multi-queue-max-queues", 0, UINT32_MAX));
  backend_has_queues_ = max_queues > 0;
  n.queues = std::min<uint32_t>(options_.queues, std::max<uint64_t>(max_queues, 1));
  XPV_ASSIGN_OR_RETURN(uint64_t max_order,
                       link_.ReadBackendUint("max-ring-page-order", UINT32_MAX, UINT32_MAX));
  backend_has_order_ = max_order != UINT32_MAX;
  const uint64_t ring_limit = std::bit_width(ring::kMaxRingPages) - 1;
  const uint64_t order = std::min<uint64_t>(
      {options_.ring_page_order, backend_has_order_ ? max_order : 0, ring_limit});
  n.ring_pages = 1u << order;

  XPV_ASSIGN_OR_RETURN(uint64_t persistent, link_.ReadBackendUint("feature-persistent", 0, 1));
  n.persistent = options_.persistent && persistent == 1;
  XPV_ASSIGN_OR_RETURN(uint64_t indirect,
                       link_.ReadBackendUint("feature-max-indirect-segments", 0, UINT32_MAX));
  uint64_t segs = std::min<uint64_t>({options_.max_indirect_segments, indirect,
                                      b::kMaxIndirectPages * b::kSegmentsPerIndirectPage});
  n.indirect_segments = segs > b::kMaxDirectSegments ? static_cast<uint32_t>(segs) : 0;
  n.protocol = options_.protocol;
  return Ok();
}

Status BlkFront::SetUpQueues() {
  platform::GuestMemory& mem = platform_.memory();
  queues_.resize(negotiated_.queues);
  for (Queue& q : queues_) {
    XPV_ASSIGN_OR_RETURN(Gfn first, mem.AllocPages(negotiated_.ring_pages));
    std::vector<uint8_t*> addrs;
    for (uint32_t i = 0; i < negotiated_.ring_pages; ++i) {
      q.ring_pages.push_back(Page{Gfn(first.value + i), GrantRef(), false});
      addrs.push_back(mem.PageAddress(Gfn(first.value + i)));
    }
    XPV_ASSIGN_OR_RETURN(q.ring, BlkifFrontRing::Create(addrs, negotiated_.protocol));
    for (Page& p : q.ring_pages) {
      XPV_ASSIGN_OR_RETURN(p.ref, platform_.grants().GrantAccess(link_.backend_id(), p.gfn,
                                                                 platform::Access::kReadWrite));
      p.granted = true;
    }
    XPV_ASSIGN_OR_RETURN(q.port, platform_.events().AllocUnbound(link_.backend_id()));
    q.port_open = true;
    XPV_ASSIGN_OR_RETURN(q.kick, ports_.Register(q.port));
    q.shadows.resize(q.ring->size());
    for (uint32_t i = q.ring->size(); i > 0; --i) q.free_shadows.push_back(i - 1);
  }
  negotiated_.ring_entries = queues_.front().ring->size();
  return Ok();
}

Status BlkFront::Publish() {
  std::vector<std::pair<std::string, std::string>> nodes;
  const uint32_t pages = negotiated_.ring_pages;
  for (uint32_t qi = 0; qi < queues_.size(); ++qi) {
    // blkif.h: one queue keeps the nodes in the device directory, several use queue-<n>/.
    const std::string dir = queues_.size() == 1 ? "" : fmt::format("queue-{}/", qi);
    const Queue& q = queues_[qi];
    for (uint32_t i = 0; i < pages; ++i) {
      const std::string node = pages == 1 ? "ring-ref" : fmt::format("ring-ref{}", i);
      nodes.emplace_back(dir + node, std::to_string(q.ring_pages[i].ref.value));
    }
    nodes.emplace_back(dir + "event-channel", std::to_string(q.port.value));
  }
  // Written whenever the backend offers the feature, so no value of an earlier connection stays.
  if (backend_has_order_)
    nodes.emplace_back("ring-page-order", std::to_string(std::countr_zero(pages)));
  if (backend_has_queues_)
    nodes.emplace_back("multi-queue-num-queues", std::to_string(queues_.size()));
  nodes.emplace_back("protocol", negotiated_.protocol == b::Protocol::kX86_32 ? b::kProtocolX86_32
                                                                              : b::kProtocolX86_64);
  nodes.emplace_back("feature-persistent", negotiated_.persistent ? "1" : "0");

  XPV_TRY(store_.InTransaction(
      [&](uint32_t tx) -> Status {
        for (const auto& [node, value] : nodes) XPV_TRY(link_.WriteFrontend(node, value, tx));
        return Ok();
      },
      kTransactionAttempts));
  return link_.SwitchState(State::kInitialised);
}

// ---------------------------------------------------------------------------------------------
// Pages.

Result<BlkFront::Page> BlkFront::AcquirePage(PageUse use) {
  const DomId be = link_.backend_id();
  if (negotiated_.persistent) {
    std::vector<Page>& pool = use == PageUse::kIndirect ? free_ro_ : free_rw_;
    if (!pool.empty()) {
      Page p = pool.back();
      pool.pop_back();
      return p;
    }
  }
  if (free_plain_.empty()) {
    if (pages_allocated_ >= options_.max_pages) return Err(EAGAIN, "page budget used up");
    const size_t chunk = std::min(kAllocChunk, options_.max_pages - pages_allocated_);
    auto first = platform_.memory().AllocPages(chunk);
    if (!first) return Err(EAGAIN, "out of guest memory");
    for (size_t i = chunk; i > 0; --i) free_plain_.push_back(Page{Gfn(first->value + i - 1)});
    pages_allocated_ += chunk;
  }
  Page p = free_plain_.back();
  // A write's data and indirect pages are only read by the backend (Linux grants them so too),
  // except persistent data pages, which serve reads and writes alike.
  const platform::Access access =
      use == PageUse::kReadData || (negotiated_.persistent && use != PageUse::kIndirect)
          ? platform::Access::kReadWrite
          : platform::Access::kReadOnly;
  XPV_ASSIGN_OR_RETURN(p.ref, platform_.grants().GrantAccess(be, p.gfn, access));
  p.granted = true;
  free_plain_.pop_back();
  return p;
}

void BlkFront::ReleasePage(Page page, PageUse use) {
  if (negotiated_.persistent) {
    // Persistent pages stay granted, each in the pool of its access.
    (use == PageUse::kIndirect ? free_ro_ : free_rw_).push_back(page);
    return;
  }
  if (!page.granted) {
    free_plain_.push_back(page);
    return;
  }
  auto st = platform_.grants().EndAccess(page.ref);
  if (!st && st.error().code == EBUSY) {
    retiring_.push_back(page);
    return;
  }
  page.granted = false;
  free_plain_.push_back(page);
}

void BlkFront::RetryRetiring() {
  for (size_t i = 0; i < retiring_.size();) {
    auto st = platform_.grants().EndAccess(retiring_[i].ref);
    if (!st && st.error().code == EBUSY) {
      ++i;
      continue;
    }
    Page p = retiring_[i];
    p.granted = false;
    free_plain_.push_back(p);
    retiring_[i] = retiring_.back();
    retiring_.pop_back();
  }
}

bool BlkFront::EndAccessBounded(GrantRef ref) {
  for (int i = 0; i < kEndAccessAttempts; ++i) {
    auto st = platform_.grants().EndAccess(ref);
    if (st || st.error().code != EBUSY) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// I/O.

size_t BlkFront::max_io_bytes() const {
  const size_t segs =
      negotiated_.indirect_segments != 0 ? negotiated_.indirect_segments : b::kMaxDirectSegments;
  // Every part of one operation must fit one ring, and its pages the budget (half of it, so
  // the indirect pages and another operation still fit).
  return std::min(size_t{negotiated_.ring_entries} * segs, options_.max_pages / 2) * kPageSize;
}

Status BlkFront::Break(const Error& e) {
  broken_ = true;
  return Err(EPROTO, e.message.empty() ? "the backend broke the protocol" : e.message);
}

Status BlkFront::SubmitRead(uint64_t tag, uint64_t offset, std::span<std::byte> into) {
  return Submit(tag, IoOp::kRead, offset, into, {}, 0);
}
Status BlkFront::SubmitWrite(uint64_t tag, uint64_t offset, std::span<const std::byte> from) {
  return Submit(tag, IoOp::kWrite, offset, {}, from, 0);
}
Status BlkFront::SubmitFlush(uint64_t tag) {
  return Submit(tag, IoOp::kFlush, 0, {}, {}, 0);
}
Status BlkFront::SubmitDiscard(uint64_t tag, uint64_t offset, uint64_t length) {
  return Submit(tag, IoOp::kDiscard, offset, {}, {}, length);
}

Status BlkFront::Submit(uint64_t tag, IoOp kind, uint64_t offset, std::span<std::byte> read_into,
                        std::span<const std::byte> write_from, uint64_t discard_length) {
  if (broken_) return Err(EPROTO, "the backend broke the protocol");
  if (closed_) return Err(ENOTCONN, "closed");
  RetryRetiring();
  const uint64_t ss = negotiated_.sector_size;
  const bool data = kind == IoOp::kRead || kind == IoOp::kWrite;
  const size_t length = kind == IoOp::kRead ? read_into.size() : write_from.size();
  if (data) {
    if (length == 0 || length % ss != 0 || offset % ss != 0)
      return Err(EINVAL, "range not whole sectors");
    if (length > max_io_bytes()) return Err(EINVAL, "longer than max_io_bytes()");
  } else if (kind == IoOp::kFlush) {
    if (!negotiated_.flush) return Err(EOPNOTSUPP, "the backend offers no flush");
  } else {
    if (!negotiated_.discard) return Err(EOPNOTSUPP, "the backend offers no discard");
    if (discard_length == 0 || discard_length % ss != 0 || offset % ss != 0)
      return Err(EINVAL, "range not whole sectors");
  }

  const size_t pages = (length + kPageSize - 1) / kPageSize;
  const size_t segs_per =
      negotiated_.indirect_segments != 0 ? negotiated_.indirect_segments : b::kMaxDirectSegments;
  const size_t parts = data ? (pages + segs_per - 1) / segs_per : 1;

  // All parts on one queue, the next one round-robin that has room for them.
  Queue* q = nullptr;
  for (size_t i = 0; i < queues_.size() && q == nullptr; ++i) {
    Queue& c = queues_[(next_queue_ + i) % queues_.size()];
    if (c.free_shadows.size() >= parts && c.ring->free_requests() >= parts) {
      q = &c;
      next_queue_ = static_cast<uint32_t>((next_queue_ + i + 1) % queues_.size());
    }
  }
  if (q == nullptr) return Err(EAGAIN, "rings full");

  // Pages for every part before anything is staged: all or nothing.
  const PageUse use = kind == IoOp::kRead ? PageUse::kReadData : PageUse::kWriteData;
  std::vector<std::vector<Page>> part_data(parts), part_indirect(parts);
  auto give_back = [&] {
    for (size_t p = 0; p < parts; ++p) {
      for (Page& pg : part_data[p]) ReleasePage(pg, use);
      for (Page& pg : part_indirect[p]) ReleasePage(pg, PageUse::kIndirect);
    }
  };
  for (size_t p = 0; p < parts && data; ++p) {
    const size_t first = p * segs_per, n = std::min(segs_per, pages - first);
    const size_t ind = n > b::kMaxDirectSegments
                           ? (n + b::kSegmentsPerIndirectPage - 1) / b::kSegmentsPerIndirectPage
                           : 0;
    for (size_t i = 0; i < n + ind; ++i) {
      auto pg = AcquirePage(i < n ? use : PageUse::kIndirect);
      if (!pg) {
        give_back();
        return ops_in_flight_ > 0 ? Err(EAGAIN, "pages busy") : pg.error();
      }
      (i < n ? part_data[p] : part_indirect[p]).push_back(*pg);
    }
  }

  uint32_t op_index;
  if (free_ops_.empty()) {
    op_index = static_cast<uint32_t>(ops_.size());
    ops_.emplace_back();
  } else {
    op_index = free_ops_.back();
    free_ops_.pop_back();
  }
  Op& op = ops_[op_index];
  op = Op{true, tag, kind, read_into.data(), static_cast<uint32_t>(parts), BLKIF_RSP_OKAY};
  ++ops_in_flight_;

  platform::GuestMemory& mem = platform_.memory();
  const uint16_t handle = 0;
  for (size_t p = 0; p < parts; ++p) {
    const uint32_t id = q->free_shadows.back();
    q->free_shadows.pop_back();
    Shadow& s = q->shadows[id];
    s.in_use = true;
    s.op = op_index;
    s.op_offset = p * segs_per * kPageSize;
    s.bytes = data ? std::min(length - s.op_offset, segs_per * kPageSize) : 0;
    s.data = std::move(part_data[p]);
    s.indirect = std::move(part_indirect[p]);
    const uint64_t sector = (offset + s.op_offset) / b::kSectorSize;
    if (!data) {
      s.operation = BlkifOperation(kind);
      if (kind == IoOp::kFlush) {
        q->ring->PutSegments(BLKIF_OP_FLUSH_DISKCACHE, id, 0, handle, 0, {});
      } else {
        q->ring->PutDiscard(id, offset / b::kSectorSize, discard_length / b::kSectorSize, 0,
                            handle);
      }
      continue;
    }
    std::vector<blkif_request_segment> segs(s.data.size());
    for (size_t i = 0; i < s.data.size(); ++i) {
      const size_t at = s.op_offset + i * kPageSize;
      const size_t len = std::min(kPageSize, length - at);
      if (kind == IoOp::kWrite) {
        // SAFETY: our own page; granted, but the backend reads it only after the push below.
        std::memcpy(mem.PageAddress(s.data[i].gfn), write_from.data() + at, len);
      }
      segs[i] = blkif_request_segment{s.data[i].ref.value, 0,
                                      static_cast<uint8_t>(len / b::kSectorSize - 1)};
    }
    const uint8_t operation = BlkifOperation(kind);
    s.operation = operation;  // an indirect request is answered with its indirect_op
    if (s.indirect.empty()) {
      q->ring->PutSegments(operation, id, sector, handle, static_cast<uint8_t>(segs.size()), segs);
    } else {
      std::vector<uint32_t> grefs;
      for (size_t i = 0; i < s.indirect.size(); ++i) {
        const size_t from = i * b::kSegmentsPerIndirectPage;
        const size_t n = std::min<size_t>(b::kSegmentsPerIndirectPage, segs.size() - from);
        uint8_t* page = mem.PageAddress(s.indirect[i].gfn);
        std::memset(page, 0, kPageSize);
        // SAFETY: our own page; the backend reads it only after the push below.
        std::memcpy(page, segs.data() + from, n * sizeof(blkif_request_segment));
        grefs.push_back(s.indirect[i].ref.value);
      }
      q->ring->PutIndirect(operation, id, sector, handle, static_cast<uint16_t>(segs.size()),
                           grefs);
    }
  }
  auto notify = q->ring->Push();
  if (!notify) return Break(notify.error());
  if (*notify) (void)platform_.events().Notify(q->port);
  return Ok();
}

void BlkFront::CompletePart(Queue& q, uint32_t id, int16_t status, std::vector<IoCompletion>& out) {
  Shadow& s = q.shadows[id];
  Op& op = ops_[s.op];
  if (op.kind == IoOp::kRead && status == BLKIF_RSP_OKAY) {
    platform::GuestMemory& mem = platform_.memory();
    for (size_t i = 0; i < s.data.size(); ++i) {
      const size_t at = i * kPageSize;
      const size_t len = std::min(kPageSize, s.bytes - at);
      // SAFETY: our own page; the backend answered, so it wrote what it was going to.
      std::memcpy(op.read_into + s.op_offset + at, mem.PageAddress(s.data[i].gfn), len);
    }
  }
  const PageUse use = op.kind == IoOp::kRead ? PageUse::kReadData : PageUse::kWriteData;
  for (Page& pg : s.data) ReleasePage(pg, use);
  for (Page& pg : s.indirect) ReleasePage(pg, PageUse::kIndirect);
  s.data.clear();
  s.indirect.clear();
  s.in_use = false;
  q.free_shadows.push_back(id);
  if (op.status == BLKIF_RSP_OKAY) op.status = status;
  if (--op.parts_left == 0) {
    out.push_back(IoCompletion{op.tag, op.kind, op.status});
    op.in_use = false;
    free_ops_.push_back(s.op);
    --ops_in_flight_;
  }
}

Result<size_t> BlkFront::Drain(Queue& q, std::vector<IoCompletion>& out) {
  const size_t before = out.size();
  // Bounded: the ring yields at most one response per request in flight per batch.
  for (uint32_t round = 0; round < 2 * q.ring->size() + 2; ++round) {
    BlkifResponse rsp[32];
    auto n = q.ring->Take(rsp);
    if (!n) return Break(n.error()).error();
    for (size_t i = 0; i < *n; ++i) {
      // An id we did not send, or sent and already got back, is a lie: not a crash.
      const uint64_t id = rsp[i].id;
      if (id >= q.shadows.size() || !q.shadows[id].in_use)
        return Break(Err(EPROTO, "response id names no request in flight")).error();
      if (rsp[i].operation != q.shadows[id].operation)
        return Break(Err(EPROTO, "response operation differs from the request's")).error();
      CompletePart(q, static_cast<uint32_t>(id), rsp[i].status, out);
    }
    if (*n != 0) continue;
    auto more = q.ring->FinalCheck();
    if (!more) return Break(more.error()).error();
    if (!*more) break;
  }
  return out.size() - before;
}

Result<size_t> BlkFront::Poll(std::vector<IoCompletion>& out) {
  if (broken_) return Err(EPROTO, "the backend broke the protocol");
  const size_t before = out.size();
  out.insert(out.end(), ready_.begin(), ready_.end());
  ready_.clear();
  RetryRetiring();
  for (Queue& q : queues_) XPV_TRY(Drain(q, out));
  return out.size() - before;
}

Result<size_t> BlkFront::Wait(std::vector<IoCompletion>& out, int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  std::vector<pollfd> fds;
  fds.push_back({ports_.fd(), POLLIN, 0});
  for (const Queue& q : queues_) fds.push_back({q.kick, POLLIN, 0});
  while (true) {
    XPV_ASSIGN_OR_RETURN(size_t n, Poll(out));
    if (n > 0) return n;
    const int left = MsLeft(deadline);
    if (left == 0) return Err(ETIMEDOUT, "no completion");
    // Poll set every queue's rsp_event: the backend notifies on its next response.
    for (pollfd& p : fds) p.revents = 0;
    if (::poll(fds.data(), fds.size(), left) < 0 && errno != EINTR) return Err(errno, "poll");
    if (fds[0].revents != 0) ports_.Dispatch();
    for (const Queue& q : queues_) platform::PortDispatcher::Clear(q.kick);
  }
}

Status BlkFront::RunSync(uint64_t offset, size_t length, IoOp kind, std::span<std::byte> read_into,
                         std::span<const std::byte> write_from) {
  if (ops_in_flight_ != 0) return Err(EBUSY, "asynchronous operations in flight");
  if (length == 0) return Err(EINVAL, "empty range");
  const size_t chunk = std::max<size_t>(
      negotiated_.sector_size,
      std::min(kSyncChunk, max_io_bytes()) / negotiated_.sector_size * negotiated_.sector_size);
  std::vector<IoCompletion> done;
  int16_t status = BLKIF_RSP_OKAY;
  auto collect = [&] {
    for (const IoCompletion& c : done)
      if (status == BLKIF_RSP_OKAY) status = c.status;
    done.clear();
  };
  for (size_t at = 0; at < length;) {
    const size_t n = std::min(chunk, length - at);
    Status st = kind == IoOp::kRead ? SubmitRead(at, offset + at, read_into.subspan(at, n))
                                    : SubmitWrite(at, offset + at, write_from.subspan(at, n));
    if (!st) {
      if (st.error().code != EAGAIN || ops_in_flight_ == 0) {
        (void)WaitAll(done);
        return st;
      }
      XPV_TRY(Wait(done, options_.timeout_ms));
      collect();
      continue;
    }
    at += n;
  }
  XPV_TRY(WaitAll(done));
  collect();
  return StatusFromBlkif(status);
}

Status BlkFront::WaitAll(std::vector<IoCompletion>& out) {
  while (ops_in_flight_ > 0) XPV_TRY(Wait(out, options_.timeout_ms));
  return Ok();
}

Status BlkFront::Read(uint64_t offset, std::span<std::byte> into) {
  return RunSync(offset, into.size(), IoOp::kRead, into, {});
}
Status BlkFront::Write(uint64_t offset, std::span<const std::byte> from) {
  return RunSync(offset, from.size(), IoOp::kWrite, {}, from);
}
Status BlkFront::Flush() {
  if (ops_in_flight_ != 0) return Err(EBUSY, "asynchronous operations in flight");
  XPV_TRY(SubmitFlush(0));
  std::vector<IoCompletion> done;
  XPV_TRY(WaitAll(done));
  return StatusFromBlkif(done.empty() ? BLKIF_RSP_ERROR : done.front().status);
}
Status BlkFront::Discard(uint64_t offset, uint64_t length) {
  if (ops_in_flight_ != 0) return Err(EBUSY, "asynchronous operations in flight");
  XPV_TRY(SubmitDiscard(0, offset, length));
  std::vector<IoCompletion> done;
  XPV_TRY(WaitAll(done));
  return StatusFromBlkif(done.empty() ? BLKIF_RSP_ERROR : done.front().status);
}

// ---------------------------------------------------------------------------------------------
// Closing.

Status BlkFront::Close() {
  if (closed_) return Ok();
  closed_ = true;
  Status result = link_.SwitchState(State::kClosing);
  if (result) {
    auto s = link_.WaitForBackend({State::kClosing, State::kClosed}, options_.timeout_ms);
    if (!s) result = s.error();
  }
  (void)link_.SwitchState(State::kClosed);
  Teardown();
  return result;
}

void BlkFront::Teardown() {
  platform::GuestMemory& mem = platform_.memory();
  auto finish = [&](const Page& p) {
    // A page the backend never let go of is leaked, never handed out again.
    if (!p.granted || EndAccessBounded(p.ref)) mem.FreePages(p.gfn, 1);
  };
  for (Queue& q : queues_) {
    if (q.kick >= 0) ports_.Unregister(q.port);
    if (q.port_open) (void)platform_.events().Close(q.port);
    q.ring.reset();
    for (Shadow& s : q.shadows) {
      for (const Page& p : s.data) finish(p);
      for (const Page& p : s.indirect) finish(p);
    }
    for (const Page& p : q.ring_pages) finish(p);
  }
  queues_.clear();
  for (auto* pool : {&free_plain_, &free_rw_, &free_ro_, &retiring_}) {
    for (const Page& p : *pool) finish(p);
    pool->clear();
  }
  ops_in_flight_ = 0;
}

BlkFront::~BlkFront() {
  (void)Close();
}

}  // namespace xpv::block
