#include "xpv/platform/sim/wire.h"

#include <sys/socket.h>

#include <algorithm>

namespace xpv::platform::sim::wire {

void MessageBuilder::Append(const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  bytes_.insert(bytes_.end(), b, b + n);
}

std::vector<uint8_t>& MessageBuilder::Finish() {
  XPV_CHECK(bytes_.size() >= sizeof(Header) && bytes_.size() <= kMaxMessage);
  const auto length = static_cast<uint32_t>(bytes_.size());
  std::memcpy(bytes_.data() + offsetof(Header, length), &length, sizeof length);
  return bytes_;
}

Result<Received> ReceiveMessage(int fd, size_t max_bytes, size_t max_fds, bool nonblocking) {
  Received out;
  out.bytes.resize(max_bytes + 1);  // one more: a longer message shows up as MSG_TRUNC
  std::vector<uint8_t> control(CMSG_SPACE(sizeof(int) * std::max<size_t>(max_fds, 1)));
  iovec iov{out.bytes.data(), out.bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  ssize_t n;
  do {
    n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | (nonblocking ? MSG_DONTWAIT : 0));
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Err(EAGAIN, "no message");
    return Err(errno == EPIPE ? ECONNRESET : errno, "recvmsg");
  }
  // Take ownership of every fd that arrived before looking at anything else, so that none leaks
  // whatever the message turns out to be.
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int received;
      std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof received);
      out.fds.emplace_back(received);
    }
  }
  if (n == 0) return Err(ECONNRESET, "connection closed");
  const bool bytes_cut = (msg.msg_flags & MSG_TRUNC) != 0 || static_cast<size_t>(n) > max_bytes;
  if (bytes_cut || (msg.msg_flags & MSG_CTRUNC) != 0) out.truncated = true;
  out.fds_lost = !bytes_cut && (msg.msg_flags & MSG_CTRUNC) != 0;
  out.bytes.resize(std::min(static_cast<size_t>(n), max_bytes));
  return out;
}

Status SendMessage(int fd, std::span<const uint8_t> bytes, std::span<const int> fds,
                   bool nonblocking) {
  XPV_CHECK(fds.size() <= 253);  // SCM_MAX_FD
  iovec iov{const_cast<uint8_t*>(bytes.data()), bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<uint8_t> control;
  if (!fds.empty()) {
    control.resize(CMSG_SPACE(fds.size_bytes()));
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(fds.size_bytes());
    std::memcpy(CMSG_DATA(c), fds.data(), fds.size_bytes());
  }
  ssize_t n;
  do {
    n = ::sendmsg(fd, &msg, MSG_NOSIGNAL | (nonblocking ? MSG_DONTWAIT : 0));
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Err(EAGAIN, "socket full");
    return Err(errno, "sendmsg");
  }
  if (static_cast<size_t>(n) != bytes.size()) return Err(EIO, "short send");
  return Ok();
}

std::string_view NameField(const char (&field)[kNameSize]) {
  const char* end = static_cast<const char*>(std::memchr(field, '\0', kNameSize));
  if (end == nullptr) return {};
  return std::string_view(field, static_cast<size_t>(end - field));
}

void SetNameField(char (&field)[kNameSize], std::string_view name) {
  std::memset(field, 0, kNameSize);
  std::memcpy(field, name.data(), std::min(name.size(), kNameSize - 1));
}

}  // namespace xpv::platform::sim::wire
