// The server's socket transport under both loops, driven from the test's own thread: raw
// non-blocking client sockets on one side, Server::RunOnce on the other, so a test can stop
// reading, send half a request or hang up exactly where it wants.
#include "xpv/xenstore/server.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>
#include <string>

namespace xpv::xenstore {
namespace {

using namespace std::chrono_literals;

const char* Name(LoopKind kind) {
  return kind == LoopKind::kEpoll ? "epoll" : "io_uring";
}

std::string Z(std::string_view s) {
  return std::string(s) + '\0';
}

std::string Request(MsgType type, std::string_view payload, uint32_t req_id = 1) {
  std::string out;
  AppendMessage(out, type, req_id, 0, payload);
  return out;
}

// A client socket that the test drives byte by byte.
class Peer {
 public:
  explicit Peer(const std::string& path) {
    fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    EXPECT_EQ(::connect(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
        << std::strerror(errno);
  }

  // Writes what the socket takes of `bytes`; returns how much that was.
  size_t Write(std::string_view bytes) {
    const ssize_t n = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
    return n < 0 ? 0 : static_cast<size_t>(n);
  }

  // Reads what has arrived. False once the server has closed the connection.
  bool Read() {
    char buf[65536];
    while (true) {
      const ssize_t n = ::recv(fd_.get(), buf, sizeof(buf), 0);
      if (n == 0) eof_ = true;
      if (n <= 0) return !eof_;
      inbuf_.append(buf, static_cast<size_t>(n));
    }
  }

  // The next complete message received, if any.
  std::optional<Message> Next() {
    if (inbuf_.size() < kHeaderSize) return std::nullopt;
    const Header h = DecodeHeader(std::span<const char, kHeaderSize>(inbuf_.data(), kHeaderSize));
    if (inbuf_.size() < kHeaderSize + h.len) return std::nullopt;
    Message m{h, inbuf_.substr(kHeaderSize, h.len)};
    inbuf_.erase(0, kHeaderSize + h.len);
    return m;
  }

  void Close() { fd_.reset(); }
  bool eof() const { return eof_; }

 private:
  UniqueFd fd_;
  std::string inbuf_;
  bool eof_ = false;
};

class ServerTest : public ::testing::TestWithParam<LoopKind> {
 protected:
  static constexpr size_t kMaxQueuedBytes = 8192;
  static constexpr size_t kMaxQueuedEvents = 16;

  void SetUp() override {
    char tmpl[] = "/tmp/xpv-server-test-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    ServerOptions so;
    so.socket_path = dir_ + "/socket";
    so.max_queued_bytes = kMaxQueuedBytes;
    so.max_queued_events = kMaxQueuedEvents;
    so.loop = GetParam();
    auto server = Server::Create(engine_, nullptr, so);
    if (!server && GetParam() == LoopKind::kUring) {
      GTEST_SKIP() << "io_uring unavailable here: " << server.error().message << ": "
                   << std::strerror(server.error().code);
    }
    ASSERT_TRUE(server.has_value()) << server.error().message;
    server_ = std::move(*server);
  }

  void TearDown() override {
    server_.reset();
    ::unlink((dir_ + "/socket").c_str());
    ::rmdir(dir_.c_str());
  }

  std::string path() const { return dir_ + "/socket"; }

  // Runs the server until `done` holds; false after 5 s without.
  bool PumpUntil(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      server_->RunOnce(2);
    }
    return true;
  }

  void Pump(int iterations) {
    for (int i = 0; i < iterations; ++i) server_->RunOnce(1);
  }

  // Sends one request and returns its reply, skipping watch events (counted in `events`).
  std::optional<Message> Call(Peer& peer, MsgType type, std::string_view payload,
                              int* events = nullptr) {
    std::string req = Request(type, payload);
    std::optional<Message> reply;
    const bool ok = PumpUntil([&] {
      if (!req.empty()) req.erase(0, peer.Write(req));
      peer.Read();
      while (auto m = peer.Next()) {
        if (m->type() != MsgType::kWatchEvent) {
          reply = std::move(m);
          return true;
        }
        if (events) ++*events;
      }
      return peer.eof();
    });
    EXPECT_TRUE(ok) << "no reply";
    return reply;
  }

  void ExpectServes(Peer& peer) {
    auto r = Call(peer, MsgType::kWrite, Z("/alive") + "yes");
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->payload, Z("OK"));
    r = Call(peer, MsgType::kRead, Z("/alive"));
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->payload, "yes");
  }

  Engine engine_;
  std::string dir_;
  std::unique_ptr<Server> server_;
};

TEST_P(ServerTest, RunsTheLoopAskedFor) {
  EXPECT_STREQ(server_->loop_name(), Name(GetParam()));
}

TEST_P(ServerTest, AnswersPipelinedAndSplitRequestsInOrder) {
  Peer p(path());
  ExpectServes(p);

  // A hundred requests in one write: a hundred replies, in order.
  std::string batch;
  for (uint32_t id = 1; id <= 100; ++id) batch += Request(MsgType::kRead, Z("/alive"), id);
  ASSERT_EQ(p.Write(batch), batch.size());
  uint32_t next = 1;
  ASSERT_TRUE(PumpUntil([&] {
    p.Read();
    while (auto m = p.Next()) {
      EXPECT_EQ(m->header.req_id, next);
      EXPECT_EQ(m->payload, "yes");
      ++next;
    }
    return next > 100;
  }));

  // One request a byte at a time.
  const std::string req = Request(MsgType::kRead, Z("/alive"), 7);
  for (char c : req) {
    ASSERT_EQ(p.Write(std::string_view(&c, 1)), 1u);
    Pump(1);
  }
  std::optional<Message> reply;
  ASSERT_TRUE(PumpUntil([&] { return p.Read() && (reply = p.Next()).has_value(); }));
  EXPECT_EQ(reply->header.req_id, 7u);
  EXPECT_EQ(reply->payload, "yes");
}

TEST_P(ServerTest, ManyClientsAreServedTogether) {
  std::vector<std::unique_ptr<Peer>> peers;
  for (int i = 0; i < 50; ++i) peers.push_back(std::make_unique<Peer>(path()));
  for (int round = 0; round < 5; ++round) {
    for (size_t i = 0; i < peers.size(); ++i) {
      const std::string key = "/many/" + std::to_string(i);
      auto r = Call(*peers[i], MsgType::kWrite, Z(key) + std::to_string(round));
      ASSERT_TRUE(r.has_value());
      r = Call(*peers[i], MsgType::kRead, Z(key));
      ASSERT_TRUE(r.has_value());
      EXPECT_EQ(r->payload, std::to_string(round));
    }
  }
  EXPECT_EQ(server_->client_count(), peers.size());
}

// A client that sends requests and never reads a reply: once its replies fill the socket and the
// server's bounded queue, the server stops reading it, so what the client can send is bounded too.
// Other clients are served meanwhile, and when the client reads at last every request is answered.
TEST_P(ServerTest, ClientThatNeverReadsIsStoppedNotBuffered) {
  Peer other(path());
  const std::string value(2000, 'v');
  ASSERT_TRUE(Call(other, MsgType::kWrite, Z("/big") + value).has_value());

  Peer hog(path());
  const std::string req = Request(MsgType::kRead, Z("/big"));
  std::string chunk;
  for (int i = 0; i < 64; ++i) chunk += req;
  std::string unsent;
  size_t requests = 0;
  size_t sent_bytes = 0;
  int stalled_rounds = 0;
  // An unbounded server would take 8 MiB of requests (and queue 800 MiB of replies).
  while (stalled_rounds < 50 && sent_bytes < (8u << 20)) {
    if (unsent.empty()) {
      unsent = chunk;
      requests += 64;
    }
    const size_t n = hog.Write(unsent);
    unsent.erase(0, n);
    sent_bytes += n;
    stalled_rounds = n == 0 ? stalled_rounds + 1 : 0;
    Pump(2);
  }
  EXPECT_LT(sent_bytes, 8u << 20) << "the server kept reading a client that never reads";

  ExpectServes(other);

  // The hog reads at last: every request is answered, in full.
  size_t replies = 0;
  const bool all = PumpUntil([&] {
    if (!unsent.empty()) unsent.erase(0, hog.Write(unsent));
    hog.Read();
    while (auto m = hog.Next()) {
      EXPECT_EQ(m->type(), MsgType::kRead);
      EXPECT_EQ(m->payload.size(), value.size());
      ++replies;
    }
    return replies == requests;
  });
  EXPECT_TRUE(all) << replies << " of " << requests << " replies";
}

// A watcher that never reads: the events that fit in its socket and the server's queue of
// kMaxQueuedEvents wait, the rest are dropped; once it reads, new events flow again.
TEST_P(ServerTest, WatchEventsBeyondTheQueueAreDroppedAndTheQueueRecovers) {
  Peer watcher(path());
  Peer writer(path());
  int events = 0;
  auto r = Call(watcher, MsgType::kWatch, Z("/w") + Z("tok"), &events);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->payload, Z("OK"));

  // Events of 300-odd bytes: far more than the watcher's socket holds.
  const std::string node = "/w/" + std::string(300, 'n');
  constexpr int kWrites = 3000;
  for (int i = 0; i < kWrites; ++i) {
    r = Call(writer, MsgType::kWrite, Z(node) + std::to_string(i));
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->payload, Z("OK"));  // the writer never waits for the watcher
  }

  int quiet = 0;
  ASSERT_TRUE(PumpUntil([&] {
    const bool got = watcher.Read() && watcher.Next().has_value();
    if (got) {
      ++events;
      quiet = 0;
      while (watcher.Next()) ++events;
    }
    return !got && ++quiet > 100;
  }));
  EXPECT_GT(events, static_cast<int>(kMaxQueuedEvents));
  EXPECT_LT(events, kWrites) << "no event was dropped";

  // The queue drained as the events left: a new one is delivered.
  ASSERT_TRUE(Call(writer, MsgType::kWrite, Z("/w/after") + "x").has_value());
  std::optional<Message> ev;
  ASSERT_TRUE(PumpUntil([&] { return watcher.Read() && (ev = watcher.Next()).has_value(); }));
  EXPECT_EQ(ev->type(), MsgType::kWatchEvent);
  EXPECT_EQ(ev->payload, Z("/w/after") + Z("tok"));
}

TEST_P(ServerTest, RequestLongerThanPayloadMaxDropsTheConnection) {
  Peer other(path());
  ExpectServes(other);

  // Exactly XENSTORE_PAYLOAD_MAX is a request like any other.
  Peer full(path());
  auto r = Call(full, MsgType::kWrite, Z("/x") + std::string(kPayloadMax - 3, 'v'));
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(full.eof());

  Peer bad(path());
  std::string header(kHeaderSize, '\0');
  EncodeHeader(Header{XS_WRITE, 1, 0, static_cast<uint32_t>(kPayloadMax + 1)}, header.data());
  ASSERT_EQ(bad.Write(header), header.size());
  ASSERT_TRUE(PumpUntil([&] { return !bad.Read(); }));
  ASSERT_TRUE(PumpUntil([&] { return server_->client_count() == 2; }));  // other, full
  ExpectServes(other);
}

TEST_P(ServerTest, DisconnectMidMessageIsHarmless) {
  Peer other(path());
  ExpectServes(other);
  {
    Peer half_header(path());
    ASSERT_EQ(half_header.Write(Request(MsgType::kRead, Z("/alive")).substr(0, 7)), 7u);
    Peer half_payload(path());
    const std::string req = Request(MsgType::kWrite, Z("/never") + std::string(100, 'v'));
    ASSERT_EQ(half_payload.Write(req.substr(0, kHeaderSize + 10)), kHeaderSize + 10);
    // A whole request whose reply finds the client gone.
    Peer gone(path());
    ASSERT_EQ(gone.Write(Request(MsgType::kRead, Z("/alive"))), kHeaderSize + 7);
    Pump(5);
  }
  ASSERT_TRUE(PumpUntil([&] { return server_->client_count() == 1; }));
  ExpectServes(other);
  auto r = Call(other, MsgType::kRead, Z("/never"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->type(), MsgType::kError);
}

TEST_P(ServerTest, StopEndsTheLoop) {
  server_->Stop();
  EXPECT_FALSE(server_->RunOnce(1000));
  EXPECT_FALSE(server_->RunOnce(0));
}

INSTANTIATE_TEST_SUITE_P(Loops, ServerTest, ::testing::Values(LoopKind::kEpoll, LoopKind::kUring),
                         [](const auto& info) { return std::string(Name(info.param)); });

TEST(ServerLoopChoice, EnvironmentSelectsEpoll) {
  Engine engine;
  char tmpl[] = "/tmp/xpv-server-test-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  ::setenv("XPV_XENSTORED_LOOP", "epoll", 1);
  auto server = Server::Create(engine, nullptr, ServerOptions{.socket_path = dir + "/socket"});
  ::unsetenv("XPV_XENSTORED_LOOP");
  ASSERT_TRUE(server.has_value());
  EXPECT_STREQ((*server)->loop_name(), "epoll");
  server->reset();
  ::unlink((dir + "/socket").c_str());
  ::rmdir(dir.c_str());
}

}  // namespace

// For gtest's messages and CTest's test names.
void PrintTo(LoopKind kind, std::ostream* os) {
  *os << Name(kind);
}

}  // namespace xpv::xenstore
