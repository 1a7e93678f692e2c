#include "xpv/xenstore/client.h"

#include "xpv/base/unix_socket.h"

#include <cstdlib>
#include <cstring>

namespace xpv::xenstore {

Result<Client> Client::Connect(const std::string& path) {
  XPV_ASSIGN_OR_RETURN(UniqueFd fd, ConnectUnix(path));
  return Client(std::make_unique<SocketTransport>(std::move(fd)));
}

Result<Client> Client::ConnectRing(xenstore_domain_interface* page, platform::PortDispatcher& ports,
                                   EvtchnPort port) {
  XPV_ASSIGN_OR_RETURN(std::unique_ptr<RingTransport> t, RingTransport::Create(page, ports, port));
  return Client(std::move(t));
}

std::string Client::DefaultSocketPath() {
  if (const char* p = std::getenv("XENSTORED_PATH")) return p;
  if (const char* d = std::getenv("XENSTORED_RUNDIR")) return std::string(d) + "/socket";
  return "/var/run/xenstored/socket";
}

Result<Message> Client::ReadMessage(int timeout_ms) {
  while (true) {
    if (inbuf_.size() >= kHeaderSize) {
      Header h = DecodeHeader(std::span<const char, kHeaderSize>(inbuf_.data(), kHeaderSize));
      if (h.len > kPayloadMax) return Err(EPROTO, "reply longer than XENSTORE_PAYLOAD_MAX");
      if (inbuf_.size() >= kHeaderSize + h.len) {
        Message m{h, inbuf_.substr(kHeaderSize, h.len)};
        inbuf_.erase(0, kHeaderSize + h.len);
        return m;
      }
    }
    char buf[8192];
    XPV_ASSIGN_OR_RETURN(size_t n, transport_->Recv(buf, timeout_ms));
    inbuf_.append(buf, n);
  }
}

Result<Message> Client::Raw(MsgType type, std::string_view payload, uint32_t tx_id) {
  const uint32_t req_id = next_req_id_++;
  std::string out;
  AppendMessage(out, type, req_id, tx_id, payload);
  XPV_TRY(transport_->Send(out));
  while (true) {
    XPV_ASSIGN_OR_RETURN(Message m, ReadMessage(reply_timeout_ms_));
    if (m.type() == MsgType::kWatchEvent) {
      auto parts = SplitStrings(m.payload);
      if (parts.size() >= 2) events_.push_back({std::string(parts[0]), std::string(parts[1])});
      continue;
    }
    return m;
  }
}

Result<std::string> Client::Call(MsgType type, std::string_view payload, uint32_t tx_id) {
  XPV_ASSIGN_OR_RETURN(Message m, Raw(type, payload, tx_id));
  if (m.type() == MsgType::kError) {
    std::string_view s = m.payload;
    if (!s.empty() && s.back() == '\0') s.remove_suffix(1);
    return Err(ErrnoFromString(s), "daemon returned an error");
  }
  return std::move(m.payload);
}

namespace {
std::string Z(std::string_view s) {
  std::string out(s);
  out += '\0';
  return out;
}
Status Done(Result<std::string> r) {
  if (!r) return r.error();
  return Ok();
}
}  // namespace

Result<std::string> Client::Read(std::string_view path, uint32_t tx) {
  return Call(MsgType::kRead, Z(path), tx);
}
Status Client::Write(std::string_view path, std::string_view value, uint32_t tx) {
  std::string p = Z(path);
  p += value;
  return Done(Call(MsgType::kWrite, p, tx));
}
Status Client::Mkdir(std::string_view path, uint32_t tx) {
  return Done(Call(MsgType::kMkdir, Z(path), tx));
}
Status Client::Rm(std::string_view path, uint32_t tx) {
  return Done(Call(MsgType::kRm, Z(path), tx));
}
Result<std::vector<std::string>> Client::Directory(std::string_view path, uint32_t tx) {
  XPV_ASSIGN_OR_RETURN(std::string r, Call(MsgType::kDirectory, Z(path), tx));
  std::vector<std::string> out;
  for (auto s : SplitStrings(r)) out.emplace_back(s);
  return out;
}
Result<uint32_t> Client::TransactionStart() {
  XPV_ASSIGN_OR_RETURN(std::string r, Call(MsgType::kTransactionStart, std::string_view("", 1)));
  return static_cast<uint32_t>(std::strtoul(r.c_str(), nullptr, 10));
}
Status Client::TransactionEnd(uint32_t tx, bool commit) {
  return Done(Call(MsgType::kTransactionEnd, Z(commit ? "T" : "F"), tx));
}
Status Client::InTransaction(const std::function<Status(uint32_t tx)>& body, int attempts) {
  for (int i = 0; i < attempts; ++i) {
    XPV_ASSIGN_OR_RETURN(uint32_t tx, TransactionStart());
    if (Status st = body(tx); !st) {
      (void)TransactionEnd(tx, false);
      return st;
    }
    Status end = TransactionEnd(tx, true);
    if (end || end.error().code != EAGAIN) return end;
  }
  return Err(EAGAIN, "the transaction kept conflicting");
}

Status Client::Watch(std::string_view path, std::string_view token) {
  return Done(Call(MsgType::kWatch, Z(path) + Z(token)));
}
Status Client::Unwatch(std::string_view path, std::string_view token) {
  return Done(Call(MsgType::kUnwatch, Z(path) + Z(token)));
}

Result<WatchEvent> Client::NextEvent(int timeout_ms) {
  while (events_.empty()) {
    XPV_ASSIGN_OR_RETURN(Message m, ReadMessage(timeout_ms));
    if (m.type() != MsgType::kWatchEvent) return Err(EPROTO, "unexpected reply without request");
    auto parts = SplitStrings(m.payload);
    if (parts.size() >= 2) events_.push_back({std::string(parts[0]), std::string(parts[1])});
  }
  WatchEvent e = std::move(events_.front());
  events_.pop_front();
  return e;
}

}  // namespace xpv::xenstore
