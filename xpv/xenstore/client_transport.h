// How a store client reaches the daemon: a byte stream, either the daemon's Unix socket (dom0
// tools) or the shared ring page of docs/misc/xenstore-ring.txt (a domain's xenbus).
//
// Both are used by Client (client.h); nothing else should need them.
#pragma once

#include <span>
#include <string_view>

#include "xpv/abi/xs_wire.h"
#include "xpv/base/result.h"
#include "xpv/base/types.h"
#include "xpv/base/unique_fd.h"
#include "xpv/platform/port_dispatcher.h"

namespace xpv::xenstore {

class ClientTransport {
 public:
  virtual ~ClientTransport() = default;
  // Sends all of `bytes`.
  virtual Status Send(std::string_view bytes) = 0;
  // Receives what is available, waiting up to `timeout_ms` (-1: forever) for the first byte.
  // ETIMEDOUT when nothing came; ECONNRESET when the daemon went away.
  virtual Result<size_t> Recv(std::span<char> buf, int timeout_ms) = 0;
  // Readable when Recv may make progress (for an event loop).
  virtual int fd() const = 0;
};

// The daemon's Unix socket.
class SocketTransport final : public ClientTransport {
 public:
  explicit SocketTransport(UniqueFd fd) : fd_(std::move(fd)) {}
  Status Send(std::string_view bytes) override;
  Result<size_t> Recv(std::span<char> buf, int timeout_ms) override;
  int fd() const override { return fd_.get(); }

 private:
  UniqueFd fd_;
};

// The guest's end of the store ring: requests into `req`, replies out of `rsp`, a notification
// on the store's event channel after each batch (xenstore-ring.txt). The daemon is the peer: an
// index that claims more than a ring's worth of data is treated as a broken connection.
class RingTransport final : public ClientTransport {
 public:
  // `page` is this domain's store page and `port` its store channel (start_info's store_mfn and
  // store_evtchn); both, and `ports`, must outlive the transport.
  static Result<std::unique_ptr<RingTransport>> Create(xenstore_domain_interface* page,
                                                       platform::PortDispatcher& ports,
                                                       EvtchnPort port);
  ~RingTransport() override;
  Status Send(std::string_view bytes) override;
  Result<size_t> Recv(std::span<char> buf, int timeout_ms) override;
  // The port's kick: readable after the loop's PortDispatcher::Dispatch() saw the store's port.
  int fd() const override { return kick_; }

 private:
  RingTransport(xenstore_domain_interface* page, platform::PortDispatcher& ports, EvtchnPort port,
                int kick)
      : page_(page), ports_(ports), port_(port), kick_(kick) {}
  // Waits up to `timeout_ms` for the store's port (or the deadline).
  Status Wait(int timeout_ms);

  xenstore_domain_interface* page_;
  platform::PortDispatcher& ports_;
  EvtchnPort port_;
  int kick_;
};

}  // namespace xpv::xenstore
