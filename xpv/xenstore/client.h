// A synchronous xenstore client: one request in flight, watch events queued as they arrive. Over
// the daemon's Unix socket (the toolstack, tests, benchmarks, dom0 backends) or over a domain's
// store ring (a domain's xenbus: frontends, driver domains). Speaks raw xs_wire.h, so it can talk
// to xpv-xenstored and to Xen's own daemons alike.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "xpv/base/result.h"
#include "xpv/base/unique_fd.h"
#include "xpv/xenstore/client_transport.h"
#include "xpv/xenstore/wire.h"

namespace xpv::xenstore {

struct WatchEvent {
  std::string path;
  std::string token;
};

class Client {
 public:
  // Connects to the daemon's socket at `path`.
  static Result<Client> Connect(const std::string& path);
  // Talks through this domain's store ring; see RingTransport for the arguments.
  static Result<Client> ConnectRing(xenstore_domain_interface* page,
                                    platform::PortDispatcher& ports, EvtchnPort port);
  // The socket path a libxenstore client would use: $XENSTORED_PATH, $XENSTORED_RUNDIR/socket,
  // else /var/run/xenstored/socket.
  static std::string DefaultSocketPath();

  // Sends one request and waits for its reply, queueing watch events that arrive first. The reply
  // may be XS_ERROR; `Raw` does not interpret it.
  Result<Message> Raw(MsgType type, std::string_view payload, uint32_t tx_id = 0);
  // Like Raw, but an XS_ERROR reply becomes an Error with the errno its string names.
  Result<std::string> Call(MsgType type, std::string_view payload, uint32_t tx_id = 0);

  Result<std::string> Read(std::string_view path, uint32_t tx = 0);
  Status Write(std::string_view path, std::string_view value, uint32_t tx = 0);
  Status Mkdir(std::string_view path, uint32_t tx = 0);
  Status Rm(std::string_view path, uint32_t tx = 0);
  Result<std::vector<std::string>> Directory(std::string_view path, uint32_t tx = 0);
  Result<uint32_t> TransactionStart();
  // Commit (`commit` true) or abort; EAGAIN means a conflict: retry the transaction.
  Status TransactionEnd(uint32_t tx, bool commit);
  // Runs `body(tx)` in a transaction and commits it, starting over (at most `attempts` times)
  // when the commit reports a conflict (EAGAIN). A failing body aborts the transaction.
  Status InTransaction(const std::function<Status(uint32_t tx)>& body, int attempts = 8);
  Status Watch(std::string_view path, std::string_view token);
  Status Unwatch(std::string_view path, std::string_view token);
  // The next watch event, waiting up to `timeout_ms` (-1: forever). ETIMEDOUT when none came.
  Result<WatchEvent> NextEvent(int timeout_ms);

  // Readable when a reply or an event may have arrived. Queued events do not make it readable:
  // an event loop calls NextEvent(0) until ETIMEDOUT after each wake-up.
  int fd() const { return transport_->fd(); }
  bool has_queued_events() const { return !events_.empty(); }

  // How long one request may wait for its reply (-1: forever, the default).
  void set_reply_timeout_ms(int ms) { reply_timeout_ms_ = ms; }

 private:
  explicit Client(std::unique_ptr<ClientTransport> t) : transport_(std::move(t)) {}
  Result<Message> ReadMessage(int timeout_ms);

  std::unique_ptr<ClientTransport> transport_;
  int reply_timeout_ms_ = -1;
  uint32_t next_req_id_ = 1;
  std::deque<WatchEvent> events_;
  std::string inbuf_;
};

}  // namespace xpv::xenstore
