#include "xpv/tools/blkback/qmp_stub.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "xpv/base/unix_socket.h"

namespace xpv::tools {

namespace {

constexpr size_t kMaxLine = 4096;  // libxl's commands here are a few dozen bytes
constexpr size_t kMaxClients = 8;
// A client that does not read its replies is dropped rather than allowed to stall the thread
// (and with it the destructor that joins it).
constexpr int kSendFlags = MSG_NOSIGNAL | MSG_DONTWAIT;

// The value of `"key": <value>` in a flat JSON object: a string's contents (no escapes in what
// libxl sends here) or a bare token (a number). nullopt when absent or malformed.
std::optional<std::string_view> Field(std::string_view line, std::string_view key, bool* quoted) {
  const std::string needle = fmt::format("\"{}\"", key);
  size_t at = line.find(needle);
  if (at == std::string_view::npos) return std::nullopt;
  at = line.find_first_not_of(" \t", at + needle.size());
  if (at == std::string_view::npos || line[at] != ':') return std::nullopt;
  at = line.find_first_not_of(" \t", at + 1);
  if (at == std::string_view::npos) return std::nullopt;
  if (line[at] == '"') {
    const size_t end = line.find('"', at + 1);
    if (end == std::string_view::npos) return std::nullopt;
    *quoted = true;
    return line.substr(at + 1, end - at - 1);
  }
  const size_t end = line.find_first_of(",} \t\r\n", at);
  if (end == at) return std::nullopt;
  *quoted = false;
  return line.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
}

bool Plain(std::string_view s) {
  for (char c : s)
    if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) return false;
  return true;
}

}  // namespace

std::string QmpGreeting() {
  return "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, "
         "\"package\": \"xpv-blkback\"}, \"capabilities\": []}}\r\n";
}

std::optional<std::string> QmpReply(std::string_view line) {
  bool quoted = false;
  auto command = Field(line, "execute", &quoted);
  if (!command || !quoted || !Plain(*command)) return std::nullopt;
  std::string ret = "{}";
  if (*command == "query-status") {
    ret = R"({"status": "running", "singlestep": false, "running": true})";
  } else if (*command == "query-chardev") {
    ret = "[]";  // no serial ptys to publish
  } else if (*command == "query-vnc") {
    ret = R"({"enabled": false})";
  }
  bool id_quoted = false;
  auto id = Field(line, "id", &id_quoted);
  if (!id || !Plain(*id)) return fmt::format("{{\"return\": {}}}\r\n", ret);
  return id_quoted ? fmt::format("{{\"return\": {}, \"id\": \"{}\"}}\r\n", ret, *id)
                   : fmt::format("{{\"return\": {}, \"id\": {}}}\r\n", ret, *id);
}

Result<std::unique_ptr<QmpStub>> QmpStub::Listen(const std::string& path) {
  // Replaces a socket left by an earlier device model of this domain id.
  XPV_ASSIGN_OR_RETURN(UniqueFd fd, ListenUnix(path, SOCK_STREAM, 4));
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return Err(errno, "pipe");
  std::unique_ptr<QmpStub> stub(
      new QmpStub(path, std::move(fd), UniqueFd(pipe_fds[0]), UniqueFd(pipe_fds[1])));
  stub->thread_ = std::thread([s = stub.get()] { s->Serve(); });
  return stub;
}

QmpStub::~QmpStub() {
  const char c = 0;
  (void)!::write(stop_w_.get(), &c, 1);
  if (thread_.joinable()) thread_.join();
  ::unlink(path_.c_str());
}

void QmpStub::Serve() {
  struct Client {
    UniqueFd fd;
    std::string in;
  };
  std::vector<Client> clients;
  while (true) {
    std::vector<pollfd> fds = {{stop_r_.get(), POLLIN, 0}, {listen_.get(), POLLIN, 0}};
    for (const Client& c : clients) fds.push_back({c.fd.get(), POLLIN, 0});
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[0].revents) return;
    if (fds[1].revents & POLLIN) {
      UniqueFd c(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (c.valid() && clients.size() < kMaxClients) {
        const std::string g = QmpGreeting();
        if (::send(c.get(), g.data(), g.size(), kSendFlags) == static_cast<ssize_t>(g.size()))
          clients.push_back({std::move(c), {}});
      }
    }
    std::vector<bool> drop(clients.size(), false);
    for (size_t i = 0; i < clients.size(); ++i) {
      if (!fds[2 + i].revents) continue;
      char buf[1024];
      const ssize_t n = ::recv(clients[i].fd.get(), buf, sizeof(buf), 0);
      if (n <= 0) {
        drop[i] = true;
        continue;
      }
      std::string& in = clients[i].in;
      in.append(buf, static_cast<size_t>(n));
      // libxl ends each command with "\r\n" (libxl_qmp.c, qmp_prepare_cmd).
      for (size_t nl; (nl = in.find('\n')) != std::string::npos; in.erase(0, nl + 1)) {
        if (auto reply = QmpReply(std::string_view(in).substr(0, nl))) {
          if (::send(clients[i].fd.get(), reply->data(), reply->size(), kSendFlags) !=
              static_cast<ssize_t>(reply->size()))
            drop[i] = true;
        }
      }
      if (in.size() > kMaxLine) drop[i] = true;
    }
    for (size_t i = clients.size(); i-- > 0;)
      if (drop[i]) clients.erase(clients.begin() + static_cast<ptrdiff_t>(i));
  }
}

}  // namespace xpv::tools
