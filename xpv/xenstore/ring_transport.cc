#include "xpv/xenstore/ring_transport.h"

#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cstring>

namespace xpv::xenstore {

// ---------------------------------------------------------------------------------------------
// MemoryRingPort

Result<std::unique_ptr<MemoryRingPort>> MemoryRingPort::Create() {
  std::unique_ptr<MemoryRingPort> p(new MemoryRingPort());
  void* mem = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return Err(errno, "mmap");
  p->page_ = static_cast<xenstore_domain_interface*>(mem);
  p->to_store_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  p->to_guest_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!p->to_store_.valid() || !p->to_guest_.valid()) return Err(errno, "eventfd");
  return p;
}

MemoryRingPort::~MemoryRingPort() {
  if (page_) ::munmap(page_, 4096);
}

namespace {
void Signal(int fd) {
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(fd, &one, sizeof(one));
}
void Drain(int fd) {
  uint64_t v;
  [[maybe_unused]] ssize_t n = ::read(fd, &v, sizeof(v));
}
}  // namespace

void MemoryRingPort::ClearEvent() {
  Drain(to_store_.get());
}
void MemoryRingPort::Notify() {
  Signal(to_guest_.get());
}
void MemoryRingPort::KickStore() {
  Signal(to_store_.get());
}

// ---------------------------------------------------------------------------------------------
// The ring page, reached only through accessors that copy values out.

namespace {

class SharedRing {
 public:
  explicit SharedRing(xenstore_domain_interface* page) : p_(page) {}

  // SAFETY: the indexes are naturally aligned u32s in the shared page; acquire loads pair with
  // the guest's write barrier before it publishes a producer index (xenstore-ring.txt).
  uint32_t Load(XENSTORE_RING_IDX* field) const { return __atomic_load_n(field, __ATOMIC_ACQUIRE); }
  void Store(XENSTORE_RING_IDX* field, uint32_t v) { __atomic_store_n(field, v, __ATOMIC_RELEASE); }

  // After a full fence, so that an index we published is visible before we read the guest's:
  // either the guest sees ours, or we see its (xenstore-ring.txt's notification rules).
  uint32_t FencedReqProd() const {
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return req_prod();
  }
  uint32_t FencedRspCons() const {
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return rsp_cons();
  }

  uint32_t req_cons() const { return Load(&p_->req_cons); }
  uint32_t req_prod() const { return Load(&p_->req_prod); }
  uint32_t rsp_cons() const { return Load(&p_->rsp_cons); }
  uint32_t rsp_prod() const { return Load(&p_->rsp_prod); }
  void set_req_cons(uint32_t v) { Store(&p_->req_cons, v); }
  void set_req_prod(uint32_t v) { Store(&p_->req_prod, v); }
  void set_rsp_cons(uint32_t v) { Store(&p_->rsp_cons, v); }
  void set_rsp_prod(uint32_t v) { Store(&p_->rsp_prod, v); }
  uint32_t connection() const { return Load(&p_->connection); }
  void set_connection(uint32_t v) { Store(&p_->connection, v); }
  uint32_t error() const { return Load(&p_->error); }
  void set_error(uint32_t v) { Store(&p_->error, v); }
  void set_server_features(uint32_t v) { Store(&p_->server_features, v); }

  // Copies `len` bytes out of `req` starting at ring index `from` (wrapping).
  void CopyOut(uint32_t from, char* dst, size_t len) const {
    for (size_t done = 0; done < len;) {
      const uint32_t off = MASK_XENSTORE_IDX(from + static_cast<uint32_t>(done));
      const size_t n = std::min<size_t>(len - done, XENSTORE_RING_SIZE - off);
      // SAFETY: off + n <= XENSTORE_RING_SIZE; the guest may change the bytes meanwhile, which
      // only changes what we copy, never where.
      std::memcpy(dst + done, p_->req + off, n);
      done += n;
    }
  }
  // Copies `len` bytes into `rsp` starting at ring index `at` (wrapping).
  void CopyIn(uint32_t at, const char* src, size_t len) {
    for (size_t done = 0; done < len;) {
      const uint32_t off = MASK_XENSTORE_IDX(at + static_cast<uint32_t>(done));
      const size_t n = std::min<size_t>(len - done, XENSTORE_RING_SIZE - off);
      // SAFETY: off + n <= XENSTORE_RING_SIZE.
      std::memcpy(p_->rsp + off, src + done, n);
      done += n;
    }
  }

 private:
  xenstore_domain_interface* p_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// RingConn: one introduced domain.

class RingDomains::RingConn final : public Pollable, public Sink {
 public:
  RingConn(Server& server, DomId domid, std::unique_ptr<RingPort> port)
      : server_(server),
        port_(std::move(port)),
        ring_(port_->page()),
        conn_(server.engine(), *this, domid,
              domid == kDom0 ? Privilege::kPrivileged : Privilege::kUnprivileged) {
    server_.engine().AttachDomainConn(domid, &conn_);
    ring_.set_server_features(XENSTORE_SERVER_FEATURE_RECONNECTION | XENSTORE_SERVER_FEATURE_ERROR);
  }

  int fd() const { return port_->event_fd(); }

  // Requests are read when the guest notifies; replies are written only from Flush(), which the
  // server calls after the journal is flushed (group commit: nothing is acknowledged unsaved).
  void OnReady(uint32_t) override {
    port_->ClearEvent();
    Pump(Phase::kRead);
    if (out_off_ < out_.size()) server_.MarkDirty(this);  // the guest may have made room
  }
  void Flush() override { Pump(Phase::kWrite); }

  void Reply(MsgType type, uint32_t req_id, uint32_t tx_id, std::string_view payload) override {
    AppendMessage(out_, type, req_id, tx_id, payload);
    server_.MarkDirty(this);
  }
  bool Event(std::string_view payload) override {
    if (queued_events_ >= server_.options().max_queued_events) return false;
    ++queued_events_;
    AppendMessage(out_, MsgType::kWatchEvent, 0, 0, payload);
    server_.MarkDirty(this);
    return true;
  }

 private:
  enum class Phase { kRead, kWrite };

  // One pass over a ring; bounded by the ring size, so a guest cannot keep us here. After writing,
  // requests held back while the reply queue was full are read again (their replies are written
  // by a later Flush, after the journal).
  void Pump(Phase phase) {
    if (ring_.connection() == XENSTORE_RECONNECT) Reconnect();
    if (ring_.error() != XENSTORE_ERROR_NONE) return;  // dead until the guest reconnects
    bool notify = false;
    if (phase == Phase::kWrite && !WriteResponses(&notify)) return;
    if ((phase == Phase::kRead || input_held_) && !ReadRequests(&notify)) return;
    if (notify) port_->Notify();
  }

  // xenstore-ring.txt: on XENSTORE_RECONNECT the server drops the connection's state, resets the
  // indexes and error, and marks the ring connected again.
  void Reconnect() {
    spdlog::info("domain {}: ring reconnection", conn_.domid().value);
    server_.engine().ResetConnection(conn_);
    decoder_ = StreamDecoder();
    out_.clear();
    queued_events_ = 0;
    ring_.set_req_cons(0);
    ring_.set_req_prod(0);
    ring_.set_rsp_cons(0);
    ring_.set_rsp_prod(0);
    ring_.set_error(XENSTORE_ERROR_NONE);
    ring_.set_connection(XENSTORE_CONNECTED);
    port_->Notify();
  }

  void Fail(uint32_t error, const char* why) {
    spdlog::warn("domain {}: {}: ring marked broken until the guest reconnects",
                 conn_.domid().value, why);
    ring_.set_error(error);
    port_->Notify();
  }

  bool ReadRequests(bool* notify) {
    // Read each index once; validate the copy.
    const uint32_t cons = ring_.req_cons();
    const uint32_t prod = ring_.req_prod();
    const uint32_t avail = prod - cons;
    if (avail > XENSTORE_RING_SIZE) {
      Fail(XENSTORE_ERROR_RINGIDX, "request producer index out of range");
      return false;
    }
    input_held_ = out_.size() >= server_.options().max_queued_bytes;
    if (avail == 0 || input_held_) return true;
    char buf[XENSTORE_RING_SIZE];
    ring_.CopyOut(cons, buf, avail);
    std::string_view data(buf, avail);
    size_t used = 0;
    while (used < data.size() && out_.size() < server_.options().max_queued_bytes) {
      auto r = decoder_.Feed(data.substr(used));
      if (!r) {
        Fail(XENSTORE_ERROR_PROTO, "request longer than XENSTORE_PAYLOAD_MAX");
        return false;
      }
      used += *r;
      if (decoder_.HasMessage()) server_.engine().Handle(conn_, decoder_.TakeMessage());
    }
    input_held_ = used < data.size();
    ring_.set_req_cons(cons + static_cast<uint32_t>(used));
    *notify = true;
    // A guest publishes without notifying while it sees us behind (Linux's xb_write() notifies
    // only if req_cons had reached its old producer): what it published since we read req_prod
    // is ours to find. Look again after the fence; come back on the next turn rather than loop.
    if (!input_held_ && ring_.FencedReqProd() != cons + static_cast<uint32_t>(used))
      port_->SelfNotify();
    return true;
  }

  bool WriteResponses(bool* notify) {
    if (out_off_ == out_.size()) return true;
    const uint32_t cons = ring_.rsp_cons();
    const uint32_t prod = ring_.rsp_prod();
    const uint32_t used = prod - cons;
    if (used > XENSTORE_RING_SIZE) {
      Fail(XENSTORE_ERROR_RINGIDX, "response consumer index out of range");
      return false;
    }
    const size_t n = std::min<size_t>(XENSTORE_RING_SIZE - used, out_.size() - out_off_);
    if (n == 0) return true;
    ring_.CopyIn(prod, out_.data() + out_off_, n);
    ring_.set_rsp_prod(prod + static_cast<uint32_t>(n));
    // Events leave in order with replies; recount what is still queued.
    out_off_ += n;
    if (out_off_ == out_.size()) {
      out_.clear();
      out_off_ = 0;
      queued_events_ = 0;
    } else if (ring_.FencedRspCons() != cons) {
      // The ring filled; a guest signals room only if it saw it full (Linux's xb_read()), and
      // it may have read before we filled it: room it made since we read rsp_cons is ours to
      // find, as above.
      port_->SelfNotify();
    }
    *notify = true;
    return true;
  }

  Server& server_;
  std::unique_ptr<RingPort> port_;
  SharedRing ring_;
  Conn conn_;
  StreamDecoder decoder_;
  std::string out_;
  size_t out_off_ = 0;
  size_t queued_events_ = 0;
  bool input_held_ = false;  // requests left unread because the reply queue was full
};

// ---------------------------------------------------------------------------------------------
// RingDomains

RingDomains::~RingDomains() {
  for (auto& [domid, p] : conns_) {
    server_.Remove(static_cast<RingConn*>(p)->fd());
    server_.Disown(p);
  }
}

Status RingDomains::Introduce(DomId domid, uint64_t gfn, uint32_t port) {
  // Xen re-binds an introduced domain's channel on a repeated INTRODUCE; so do we, by replacing
  // the ring connection.
  Release(domid);
  XPV_ASSIGN_OR_RETURN(std::unique_ptr<RingPort> ring, factory_(domid, gfn, port));
  // The guest may have published requests before it was introduced (a kernel's xenbus starts
  // before the store does), and its notification then went nowhere: look at the ring once.
  ring->SelfNotify();
  auto conn = std::make_unique<RingConn>(server_, domid, std::move(ring));
  XPV_TRY(server_.Add(conn->fd(), POLLIN, conn.get()));
  conns_[domid] = conn.get();
  server_.Adopt(std::move(conn));
  return Ok();
}

void RingDomains::Release(DomId domid) {
  auto it = conns_.find(domid);
  if (it == conns_.end()) return;
  server_.Remove(static_cast<RingConn*>(it->second)->fd());
  server_.Disown(it->second);
  conns_.erase(it);
}

}  // namespace xpv::xenstore
