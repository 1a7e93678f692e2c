// The guest's end of a xenstore ring, as a PV guest's xenbus driver drives it
// (docs/misc/xenstore-ring.txt): requests into `req`, replies out of `rsp`, a notification on the
// store's event channel after each. Synchronous, one request in flight, watch events skipped.
// Test-only: for tests and the test guest of the toolstack's end-to-end test.
#pragma once

#include <poll.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <string_view>

#include "xpv/abi/xs_wire.h"
#include "xpv/base/result.h"
#include "xpv/platform/platform.h"

namespace xpv::xenstore::testing {

class RingGuest {
 public:
  // `page` is the guest's own store page; `port` its store channel (start_info's store_evtchn).
  RingGuest(xenstore_domain_interface* page, platform::EventChannels& events, EvtchnPort port)
      : page_(page), events_(events), port_(port) {}

  struct Reply {
    uint32_t type = 0;
    std::string body;
  };

  // Sends one request and waits up to `timeout_ms` for its reply.
  Result<Reply> Call(uint32_t type, std::string_view payload, int timeout_ms = 5000) {
    xsd_sockmsg hdr{};
    hdr.type = type;
    hdr.req_id = ++req_id_;
    hdr.len = static_cast<uint32_t>(payload.size());
    std::string msg(reinterpret_cast<const char*>(&hdr), sizeof hdr);
    msg.append(payload);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    XPV_TRY(Put(msg, deadline));
    while (true) {
      xsd_sockmsg rh{};
      XPV_TRY(Get(reinterpret_cast<char*>(&rh), sizeof rh, deadline));
      if (rh.len > XENSTORE_PAYLOAD_MAX) return Err(EPROTO, "reply too long");
      Reply r{rh.type, std::string(rh.len, '\0')};
      XPV_TRY(Get(r.body.data(), rh.len, deadline));
      if (rh.type == XS_WATCH_EVENT) continue;
      return r;
    }
  }

  Status Write(std::string_view path, std::string_view value) {
    std::string p(path);
    p.push_back('\0');
    p.append(value);
    XPV_ASSIGN_OR_RETURN(Reply r, Call(XS_WRITE, p));
    if (r.type == XS_ERROR) return Err(EACCES, "XS_WRITE refused");
    return Ok();
  }
  Result<std::string> Read(std::string_view path) {
    std::string p(path);
    p.push_back('\0');
    XPV_ASSIGN_OR_RETURN(Reply r, Call(XS_READ, p));
    if (r.type == XS_ERROR) return Err(ENOENT, "XS_READ refused");
    return r.body;
  }

 private:
  using Deadline = std::chrono::steady_clock::time_point;

  static std::atomic_ref<uint32_t> Idx(uint32_t& v) { return std::atomic_ref<uint32_t>(v); }

  Status Wait(Deadline deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Err(ETIMEDOUT, "xenstore ring: timed out");
    pollfd pfd{events_.fd(), POLLIN, 0};
    ::poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left.count(), 50)));
    while (auto p = events_.NextPending()) (void)events_.Unmask(*p);
    return Ok();
  }

  Status Put(std::string_view data, Deadline deadline) {
    size_t off = 0;
    while (off < data.size()) {
      // SAFETY: indices are shared with the store; acquire/release order the data copies.
      const uint32_t cons = Idx(page_->req_cons).load(std::memory_order_acquire);
      uint32_t prod = Idx(page_->req_prod).load(std::memory_order_relaxed);
      uint32_t space = XENSTORE_RING_SIZE - (prod - cons);
      if (space == 0) {
        XPV_TRY(Wait(deadline));
        continue;
      }
      while (space > 0 && off < data.size()) {
        page_->req[MASK_XENSTORE_IDX(prod)] = data[off++];
        ++prod;
        --space;
      }
      Idx(page_->req_prod).store(prod, std::memory_order_release);
      (void)events_.Notify(port_);
    }
    return Ok();
  }

  Status Get(char* out, size_t len, Deadline deadline) {
    size_t off = 0;
    while (off < len) {
      const uint32_t prod = Idx(page_->rsp_prod).load(std::memory_order_acquire);
      uint32_t cons = Idx(page_->rsp_cons).load(std::memory_order_relaxed);
      if (prod == cons) {
        XPV_TRY(Wait(deadline));
        continue;
      }
      while (cons != prod && off < len) out[off++] = page_->rsp[MASK_XENSTORE_IDX(cons++)];
      Idx(page_->rsp_cons).store(cons, std::memory_order_release);
      (void)events_.Notify(port_);
    }
    return Ok();
  }

  xenstore_domain_interface* page_;
  platform::EventChannels& events_;
  EvtchnPort port_;
  uint32_t req_id_ = 0;
};

}  // namespace xpv::xenstore::testing
