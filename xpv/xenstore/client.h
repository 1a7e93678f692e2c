// A synchronous xenstore client over the Unix socket: one request in flight, watch events queued
// as they arrive. Used by the toolstack, tests and benchmarks. Speaks raw xs_wire.h, so it can
// talk to xpv-xenstored and to Xen's own daemons alike.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "xpv/base/result.h"
#include "xpv/base/unique_fd.h"
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
  Status Watch(std::string_view path, std::string_view token);
  Status Unwatch(std::string_view path, std::string_view token);
  // The next watch event, waiting up to `timeout_ms` (-1: forever). ETIMEDOUT when none came.
  Result<WatchEvent> NextEvent(int timeout_ms);

  int fd() const { return fd_.get(); }

 private:
  explicit Client(UniqueFd fd) : fd_(std::move(fd)) {}
  Result<Message> ReadMessage(int timeout_ms);

  UniqueFd fd_;
  uint32_t next_req_id_ = 1;
  std::deque<WatchEvent> events_;
  std::string inbuf_;
};

}  // namespace xpv::xenstore
