// xpv-xs-echo: the ceiling xpv-xs-bench measures daemons against. A single-threaded epoll server
// on a Unix socket that answers every xsd_sockmsg request at once with the header it came with and
// a payload of the size a real xenstored would send ("OK\0" for WRITE, the value for READ...),
// storing nothing. Whatever a daemon does beyond this is its own cost.
#include <fmt/format.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <string>
#include <unordered_map>

#include "xpv/base/unique_fd.h"
#include "xpv/base/unix_socket.h"
#include "xpv/xenstore/wire.h"

namespace {

using xpv::Err;
using xpv::Result;
using xpv::UniqueFd;
using xpv::xenstore::Message;
using xpv::xenstore::MsgType;

// Reply payloads, built once. READ and DIRECTORY sizes come from the bench, which knows its store.
struct Replies {
  std::string read;
  std::string directory;
  std::string ok{"OK", 3};             // xenstore.txt: most requests answer "OK\0"
  std::string transaction_id{"1", 2};  // TRANSACTION_START: the id, nul-terminated

  const std::string& For(MsgType type) const {
    switch (type) {
      case MsgType::kRead:
        return read;
      case MsgType::kDirectory:
        return directory;
      case MsgType::kTransactionStart:
        return transaction_id;
      default:
        return ok;
    }
  }
};

// What a connection is polled for: requests, or room for queued replies.
enum class Waiting { kToRead, kToSend };

struct Connection {
  UniqueFd fd;
  xpv::xenstore::StreamDecoder decoder;
  std::string out;  // replies not yet taken by the socket
  Waiting waiting = Waiting::kToRead;
};

class EchoServer {
 public:
  EchoServer(UniqueFd listener, UniqueFd epoll, Replies replies)
      : listener_(std::move(listener)), epoll_(std::move(epoll)), replies_(std::move(replies)) {}

  xpv::Status Run() {
    if (!EpollCtl(EPOLL_CTL_ADD, listener_.get(), EPOLLIN)) return Err(errno, "epoll_ctl");
    epoll_event events[64];
    while (true) {
      const int n = ::epoll_wait(epoll_.get(), events, 64, -1);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Err(errno, "epoll_wait");
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == listener_.get()) {
          Accept();
        } else if (!Serve(fd, events[i].events)) {
          ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
          connections_.erase(fd);
        }
      }
    }
  }

 private:
  bool EpollCtl(int op, int fd, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    return ::epoll_ctl(epoll_.get(), op, fd, &ev) == 0;
  }

  void Accept() {
    while (true) {
      UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (!fd.valid()) return;  // EAGAIN: all taken; anything else: the client's problem
      const int raw = fd.get();
      if (!EpollCtl(EPOLL_CTL_ADD, raw, EPOLLIN)) continue;
      connections_[raw].fd = std::move(fd);
    }
  }

  // Reads requests and answers them. False: the connection is finished.
  bool Serve(int fd, uint32_t events) {
    Connection& c = connections_[fd];
    if ((events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN)) return false;
    if (events & EPOLLIN) {
      char buf[65536];
      const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return false;
      std::string_view data(buf, n > 0 ? static_cast<size_t>(n) : 0);
      while (!data.empty()) {
        Result<size_t> used = c.decoder.Feed(data);
        if (!used) return false;  // oversized message: Xen drops the connection too
        data.remove_prefix(*used);
        if (!c.decoder.HasMessage()) continue;
        const Message m = c.decoder.TakeMessage();
        xpv::xenstore::AppendMessage(c.out, m.type(), m.header.req_id, m.header.tx_id,
                                     replies_.For(m.type()));
      }
    }
    return Flush(c);
  }

  // Sends what the socket takes; waits for EPOLLOUT, and stops reading, while replies are queued.
  bool Flush(Connection& c) {
    while (!c.out.empty()) {
      const ssize_t n = ::send(c.fd.get(), c.out.data(), c.out.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return Poll(c, Waiting::kToSend);
      if (n < 0) return false;
      c.out.erase(0, static_cast<size_t>(n));
    }
    return Poll(c, Waiting::kToRead);
  }

  bool Poll(Connection& c, Waiting waiting) {
    if (c.waiting == waiting) return true;
    c.waiting = waiting;
    return EpollCtl(EPOLL_CTL_MOD, c.fd.get(), waiting == Waiting::kToSend ? EPOLLOUT : EPOLLIN);
  }

  UniqueFd listener_;
  UniqueFd epoll_;
  Replies replies_;
  std::unordered_map<int, Connection> connections_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string socket_path;
  size_t read_bytes = 16;
  size_t directory_bytes = 1100;
  CLI::App app{"xenstored echo ceiling: answers every request at once, stores nothing"};
  app.add_option("--socket", socket_path, "Unix socket to listen on")->required();
  app.add_option("--read-reply-bytes", read_bytes, "payload bytes answered to READ");
  app.add_option("--directory-reply-bytes", directory_bytes, "payload bytes answered to DIRECTORY");
  CLI11_PARSE(app, argc, argv);

  Result<UniqueFd> listener = xpv::ListenUnix(socket_path, SOCK_STREAM | SOCK_NONBLOCK);
  UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
  if (!listener || !epoll.valid()) {
    fmt::print(stderr, "xpv-xs-echo: cannot listen on {}: {}\n", socket_path,
               std::strerror(listener ? errno : listener.error().code));
    return 1;
  }
  Replies replies;
  replies.read.assign(read_bytes, 'v');
  // Names with a nul after each, as a listing has.
  replies.directory.assign(directory_bytes, 'e');
  for (size_t i = 10; i < directory_bytes; i += 11) replies.directory[i] = '\0';
  EchoServer server(std::move(*listener), std::move(epoll), std::move(replies));
  xpv::Status result = server.Run();
  fmt::print(stderr, "xpv-xs-echo: {}: {}\n", result.error().message,
             std::strerror(result.error().code));
  return 1;
}
