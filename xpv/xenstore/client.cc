#include "xpv/xenstore/client.h"

#include "xpv/base/unix_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstdlib>
#include <cstring>

namespace xpv::xenstore {

Result<Client> Client::Connect(const std::string& path) {
  XPV_ASSIGN_OR_RETURN(UniqueFd fd, ConnectUnix(path));
  return Client(std::move(fd));
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
    if (timeout_ms >= 0) {
      pollfd p{fd_.get(), POLLIN, 0};
      const int r = ::poll(&p, 1, timeout_ms);
      if (r == 0) return Err(ETIMEDOUT, "no message");
      if (r < 0 && errno != EINTR) return Err(errno, "poll");
    }
    char buf[8192];
    const ssize_t n = ::recv(fd_.get(), buf, sizeof(buf), 0);
    if (n == 0) return Err(ECONNRESET, "daemon closed the connection");
    if (n < 0) {
      if (errno == EINTR) continue;
      return Err(errno, "recv");
    }
    inbuf_.append(buf, static_cast<size_t>(n));
  }
}

Result<Message> Client::Raw(MsgType type, std::string_view payload, uint32_t tx_id) {
  const uint32_t req_id = next_req_id_++;
  std::string out;
  AppendMessage(out, type, req_id, tx_id, payload);
  size_t off = 0;
  while (off < out.size()) {
    const ssize_t n = ::send(fd_.get(), out.data() + off, out.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Err(errno, "send");
    }
    off += static_cast<size_t>(n);
  }
  while (true) {
    XPV_ASSIGN_OR_RETURN(Message m, ReadMessage(-1));
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
