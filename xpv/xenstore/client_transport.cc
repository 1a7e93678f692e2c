#include "xpv/xenstore/client_transport.h"

#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>

namespace xpv::xenstore {

Status SocketTransport::Send(std::string_view bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = ::send(fd_.get(), bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Err(errno, "send");
    }
    off += static_cast<size_t>(n);
  }
  return Ok();
}

Result<size_t> SocketTransport::Recv(std::span<char> buf, int timeout_ms) {
  while (true) {
    if (timeout_ms >= 0) {
      pollfd p{fd_.get(), POLLIN, 0};
      const int r = ::poll(&p, 1, timeout_ms);
      if (r == 0) return Err(ETIMEDOUT, "no message");
      if (r < 0) {
        if (errno == EINTR) continue;
        return Err(errno, "poll");
      }
    }
    const ssize_t n = ::recv(fd_.get(), buf.data(), buf.size(), 0);
    if (n == 0) return Err(ECONNRESET, "daemon closed the connection");
    if (n < 0) {
      if (errno == EINTR) continue;
      return Err(errno, "recv");
    }
    return static_cast<size_t>(n);
  }
}

namespace {

using Clock = std::chrono::steady_clock;

// SAFETY: the indices live in the shared store page, written by the daemon; each is read with
// one atomic load (acquire orders the data reads after it) and written with a release store.
std::atomic_ref<uint32_t> Idx(uint32_t& v) {
  return std::atomic_ref<uint32_t>(v);
}

int MsLeft(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left.count(), INT32_MAX));
}

}  // namespace

Result<std::unique_ptr<RingTransport>> RingTransport::Create(xenstore_domain_interface* page,
                                                             platform::PortDispatcher& ports,
                                                             EvtchnPort port) {
  XPV_ASSIGN_OR_RETURN(int kick, ports.Register(port));
  return std::unique_ptr<RingTransport>(new RingTransport(page, ports, port, kick));
}

RingTransport::~RingTransport() {
  ports_.Unregister(port_);
}

Status RingTransport::Wait(int timeout_ms) {
  if (Idx(page_->connection).load(std::memory_order_acquire) != XENSTORE_CONNECTED)
    return Err(ECONNRESET, "store ring: reconnecting");
  pollfd p[2] = {{kick_, POLLIN, 0}, {ports_.fd(), POLLIN, 0}};
  const int r = ::poll(p, 2, timeout_ms);
  if (r < 0 && errno != EINTR) return Err(errno, "poll");
  if (p[1].revents & POLLIN) ports_.Dispatch();
  if (p[0].revents & POLLIN) platform::PortDispatcher::Clear(kick_);
  return Ok();
}

Status RingTransport::Send(std::string_view bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    const uint32_t cons = Idx(page_->req_cons).load(std::memory_order_acquire);
    uint32_t prod = Idx(page_->req_prod).load(std::memory_order_relaxed);
    if (prod - cons > XENSTORE_RING_SIZE) return Err(EPROTO, "store ring: request index corrupt");
    uint32_t space = XENSTORE_RING_SIZE - (prod - cons);
    if (space == 0) {
      XPV_TRY(Wait(100));
      continue;
    }
    // SAFETY: MASK_XENSTORE_IDX keeps every byte inside req[]; the daemon reads only up to
    // req_prod, which is published after the bytes (release).
    for (; space > 0 && off < bytes.size(); --space)
      page_->req[MASK_XENSTORE_IDX(prod++)] = bytes[off++];
    Idx(page_->req_prod).store(prod, std::memory_order_release);
    (void)ports_.events().Notify(port_);
  }
  return Ok();
}

Result<size_t> RingTransport::Recv(std::span<char> buf, int timeout_ms) {
  const auto deadline = timeout_ms < 0 ? Clock::time_point::max()
                                       : Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    const uint32_t prod = Idx(page_->rsp_prod).load(std::memory_order_acquire);
    uint32_t cons = Idx(page_->rsp_cons).load(std::memory_order_relaxed);
    if (prod - cons > XENSTORE_RING_SIZE) return Err(EPROTO, "store ring: reply index corrupt");
    if (prod != cons) {
      size_t n = 0;
      // SAFETY: as in Send; each byte is copied out once and never read again.
      while (cons != prod && n < buf.size()) buf[n++] = page_->rsp[MASK_XENSTORE_IDX(cons++)];
      Idx(page_->rsp_cons).store(cons, std::memory_order_release);
      (void)ports_.events().Notify(port_);
      return n;
    }
    const int wait = timeout_ms < 0 ? 100 : std::min(MsLeft(deadline), 100);
    if (timeout_ms >= 0 && wait == 0) return Err(ETIMEDOUT, "no message");
    XPV_TRY(Wait(wait));
  }
}

}  // namespace xpv::xenstore
