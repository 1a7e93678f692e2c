// The domain ring transport, end to end in one process: a real Server and Engine on a thread, a
// dom0 client on the Unix socket, and a "guest" that drives a xenstore_domain_interface page in
// memory with eventfds for its event channel.
#include "xpv/xenstore/ring_transport.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <random>
#include <span>
#include <thread>

#include <fmt/format.h>

#include "xpv/xenstore/client.h"

namespace xpv::xenstore {
namespace {

using namespace std::chrono_literals;

// The guest's side of the ring: writes requests, reads replies, as a PV kernel's xenbus would.
class Guest {
 public:
  explicit Guest(MemoryRingPort* port) : port_(port), page_(port->page()) {}

  xenstore_domain_interface* page() { return page_; }

  void Send(MsgType type, std::string_view payload, uint32_t req_id = 1) {
    std::string msg;
    AppendMessage(msg, type, req_id, 0, payload);
    SendBytes(msg);
  }

  void SendBytes(std::string_view bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      const uint32_t cons = Load(&page_->req_cons);
      const uint32_t prod = page_->req_prod;
      const size_t space = XENSTORE_RING_SIZE - (prod - cons);
      const size_t n = std::min(space, bytes.size() - off);
      for (size_t i = 0; i < n; ++i) {
        page_->req[MASK_XENSTORE_IDX(prod + i)] = bytes[off + i];
      }
      __atomic_store_n(&page_->req_prod, prod + static_cast<uint32_t>(n), __ATOMIC_RELEASE);
      port_->KickStore();
      off += n;
      if (off < bytes.size()) WaitForStore();
    }
  }

  // The next message from the store, or nullopt after `timeout`.
  std::optional<Message> Receive(std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      while (Load(&page_->rsp_cons) != Load(&page_->rsp_prod)) {
        const uint32_t cons = page_->rsp_cons;
        inbuf_ += page_->rsp[MASK_XENSTORE_IDX(cons)];
        __atomic_store_n(&page_->rsp_cons, cons + 1, __ATOMIC_RELEASE);
      }
      port_->KickStore();  // tell the store there is room
      if (inbuf_.size() >= kHeaderSize) {
        Header h = DecodeHeader(std::span<const char, kHeaderSize>(inbuf_.data(), kHeaderSize));
        if (inbuf_.size() >= kHeaderSize + h.len) {
          Message m{h, inbuf_.substr(kHeaderSize, h.len)};
          inbuf_.erase(0, kHeaderSize + h.len);
          return m;
        }
      }
      if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
      WaitForStore();
    }
  }

  std::string Call(MsgType type, std::string_view payload) {
    Send(type, payload, ++req_id_);
    while (auto m = Receive()) {
      if (m->type() == MsgType::kWatchEvent) {
        events_.push_back(m->payload);
        continue;
      }
      EXPECT_EQ(m->header.req_id, req_id_);
      if (m->type() == MsgType::kError)
        return "error:" + m->payload.substr(0, m->payload.size() - 1);
      return m->payload;
    }
    return "timeout";
  }

  std::vector<std::string> events_;

 private:
  static uint32_t Load(uint32_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
  void WaitForStore() {
    pollfd p{port_->guest_fd(), POLLIN, 0};
    ::poll(&p, 1, 20);
    uint64_t v;
    [[maybe_unused]] ssize_t n = ::read(port_->guest_fd(), &v, sizeof(v));
  }

  MemoryRingPort* port_;
  xenstore_domain_interface* page_;
  std::string inbuf_;
  uint32_t req_id_ = 0;
};

// A guest that economises on notifications exactly as Linux's xenbus does (xenbus_comms.c):
// each chunk of a request (header, then every argument) is published on its own, and the store
// is notified only if it had already consumed everything before that chunk; room made in the
// reply ring is signalled only if the ring was full. So a store that reads the producer index,
// and meanwhile the guest publishes more without a notification, must look again after it
// moves its consumer index, or that request is never read. It never polls: it only waits.
class LinuxLikeGuest {
 public:
  explicit LinuxLikeGuest(MemoryRingPort* port) : port_(port), page_(port->page()) {}

  // Sends a request in chunks, the given pause between them (and as long a pause copying each
  // piece of the reply), and returns the reply's payload, or nullopt when the store went quiet
  // for `quiet`.
  std::optional<std::string> Call(MsgType type, std::span<const std::string> args,
                                  std::chrono::microseconds pause,
                                  std::chrono::milliseconds quiet = 5s) {
    std::string body;
    for (const std::string& a : args) body += a;
    std::string header(kHeaderSize, '\0');
    EncodeHeader(
        Header{static_cast<uint32_t>(type), ++req_id_, 0, static_cast<uint32_t>(body.size())},
        header.data());
    if (!Write(header, quiet)) return std::nullopt;
    for (const std::string& a : args) {
      Spin(pause);
      if (!Write(a, quiet)) return std::nullopt;
    }
    while (true) {
      if (inbuf_.size() >= kHeaderSize) {
        Header h = DecodeHeader(std::span<const char, kHeaderSize>(inbuf_.data(), kHeaderSize));
        if (inbuf_.size() >= kHeaderSize + h.len) {
          std::string payload = inbuf_.substr(kHeaderSize, h.len);
          inbuf_.erase(0, kHeaderSize + h.len);
          if (h.type == XS_WATCH_EVENT) continue;
          EXPECT_EQ(h.req_id, req_id_);
          return payload;
        }
      }
      if (!Read(pause) && !WaitForStore(quiet)) return std::nullopt;
    }
  }

 private:
  static uint32_t Load(uint32_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
  static void Spin(std::chrono::microseconds d) {
    const auto until = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < until) {
    }
  }

  // xb_write(): one chunk; notifies only if the store had caught up with the old producer.
  bool Write(std::string_view bytes, std::chrono::milliseconds quiet) {
    while (!bytes.empty()) {
      const uint32_t cons = Load(&page_->req_cons);
      const uint32_t prod = page_->req_prod;
      const size_t n = std::min<size_t>(XENSTORE_RING_SIZE - (prod - cons), bytes.size());
      if (n == 0) {
        if (!WaitForStore(quiet)) return false;
        continue;
      }
      for (size_t i = 0; i < n; ++i) page_->req[MASK_XENSTORE_IDX(prod + i)] = bytes[i];
      __atomic_store_n(&page_->req_prod, prod + static_cast<uint32_t>(n), __ATOMIC_RELEASE);
      __atomic_thread_fence(__ATOMIC_SEQ_CST);
      if (prod <= Load(&page_->req_cons)) port_->KickStore();
      bytes.remove_prefix(n);
    }
    return true;
  }

  // xb_read(): takes what there is, as slowly as `copy` says; notifies only if the ring had
  // been full.
  // Like process_msg(), it asks for the header first, then for the body.
  bool Read(std::chrono::microseconds copy) {
    size_t want = kHeaderSize - std::min(inbuf_.size(), kHeaderSize);
    if (want == 0) {
      Header h = DecodeHeader(std::span<const char, kHeaderSize>(inbuf_.data(), kHeaderSize));
      want = kHeaderSize + h.len - inbuf_.size();
    }
    const uint32_t prod = Load(&page_->rsp_prod);
    const uint32_t cons = page_->rsp_cons;
    const uint32_t n = std::min<uint32_t>(prod - cons, static_cast<uint32_t>(want));
    if (n == 0) return false;
    for (uint32_t i = cons; i != cons + n; ++i) inbuf_ += page_->rsp[MASK_XENSTORE_IDX(i)];
    Spin(copy);
    __atomic_store_n(&page_->rsp_cons, cons + n, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (Load(&page_->rsp_prod) - cons >= XENSTORE_RING_SIZE) port_->KickStore();
    return true;
  }

  bool WaitForStore(std::chrono::milliseconds quiet) {
    pollfd p{port_->guest_fd(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(quiet.count())) <= 0) return false;
    uint64_t v;
    [[maybe_unused]] ssize_t n = ::read(port_->guest_fd(), &v, sizeof(v));
    return true;
  }

  MemoryRingPort* port_;
  xenstore_domain_interface* page_;
  std::string inbuf_;
  uint32_t req_id_ = 0;
};

std::string Z(std::string_view s) {
  return std::string(s) + '\0';
}

class RingTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/xpv-ring-test-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    ServerOptions so;
    so.socket_path = dir_ + "/socket";
    so.max_queued_bytes = 8192;
    so.max_queued_events = 16;
    server_ = std::move(*Server::Create(engine_, nullptr, so));
    domains_ = std::make_unique<RingDomains>(*server_, [this](DomId, uint64_t, uint32_t) {
      auto port = MemoryRingPort::Create();
      EXPECT_TRUE(port.has_value());
      guest_port_ = port->get();
      if (before_introduce_) before_introduce_(guest_port_);
      return Result<std::unique_ptr<RingPort>>(std::unique_ptr<RingPort>(std::move(*port)));
    });
    engine_.set_domain_hooks(domains_.get());
    thread_ = std::thread([this] {
      while (server_->RunOnce(50) && !stop_) {
      }
    });
    dom0_ = std::make_unique<Client>(std::move(*Client::Connect(so.socket_path)));
  }

  void TearDown() override {
    stop_ = true;
    server_->Stop();
    thread_.join();
    engine_.set_domain_hooks(nullptr);
    domains_.reset();
    server_.reset();
    ::unlink((dir_ + "/socket").c_str());
    ::rmdir(dir_.c_str());
  }

  // What a toolstack does: make the domain's home, then introduce it.
  Guest Introduce(uint32_t domid) {
    const std::string home = DomainPath(domid);
    EXPECT_TRUE(dom0_->Write(home, "").has_value());
    EXPECT_TRUE(
        dom0_->Call(MsgType::kSetPerms, Z(home) + Z(fmt::format("n{}", domid))).has_value());
    auto r = dom0_->Call(MsgType::kIntroduce, Z(std::to_string(domid)) + Z("1") + Z("3"));
    EXPECT_TRUE(r.has_value());
    return Guest(guest_port_);
  }

  Engine engine_;
  std::string dir_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<RingDomains> domains_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::unique_ptr<Client> dom0_;
  MemoryRingPort* guest_port_ = nullptr;
  std::function<void(MemoryRingPort*)> before_introduce_;  // runs as the store maps the ring
};

TEST_F(RingTransportTest, GuestReadsAndWritesItsHomeThroughTheRing) {
  Guest g = Introduce(5);
  EXPECT_EQ(g.page()->server_features,
            uint32_t{XENSTORE_SERVER_FEATURE_RECONNECTION | XENSTORE_SERVER_FEATURE_ERROR});
  EXPECT_EQ(g.Call(MsgType::kWrite, Z("data") + "hello"), std::string("OK", 3));
  EXPECT_EQ(g.Call(MsgType::kRead, Z("data")), "hello");
  EXPECT_EQ(*dom0_->Read("/local/domain/5/data"), "hello");
  // The guest owns what it created and cannot see dom0's private nodes.
  EXPECT_EQ(g.Call(MsgType::kGetPerms, Z("data")), Z("n5"));
  EXPECT_EQ(g.Call(MsgType::kRead, Z("/tool/xenstored")), "error:EACCES");
  EXPECT_EQ(g.Call(MsgType::kIntroduce, Z("6") + Z("1") + Z("2")), "error:EACCES");
}

TEST_F(RingTransportTest, GuestWatchFiresOverTheRingWithRelativePath) {
  Guest g = Introduce(7);
  EXPECT_EQ(g.Call(MsgType::kWatch, Z("device") + Z("tok")), std::string("OK", 3));
  ASSERT_TRUE(dom0_->Write("/local/domain/7/device/vbd", "x").has_value());
  // The initial event, then the one for dom0's write, both relative.
  for (int i = 0; i < 2 && g.events_.size() < 2;) {
    auto m = g.Receive();
    ASSERT_TRUE(m.has_value());
    if (m->type() == MsgType::kWatchEvent) g.events_.push_back(m->payload);
  }
  ASSERT_EQ(g.events_.size(), 2u);
  EXPECT_EQ(g.events_[0], Z("device") + Z("tok"));
  EXPECT_EQ(g.events_[1], Z("device/vbd") + Z("tok"));
}

TEST_F(RingTransportTest, RequestsLargerThanTheRingWrapAround) {
  Guest g = Introduce(8);
  const std::string big(1900, 'v');  // within the node-size quota, larger than the ring
  for (int i = 0; i < 5; ++i) {
    const std::string path = "n" + std::to_string(i);
    EXPECT_EQ(g.Call(MsgType::kWrite, Z(path) + big), std::string("OK", 3));
    EXPECT_EQ(g.Call(MsgType::kRead, Z(path)), big);
  }
}

TEST_F(RingTransportTest, LyingProducerIndexMarksRingBrokenAndStoreServesOthers) {
  Guest g = Introduce(9);
  auto* page = g.page();
  __atomic_store_n(&page->req_prod, page->req_cons + 5000, __ATOMIC_RELEASE);
  guest_port_->KickStore();
  for (int i = 0; i < 200 && __atomic_load_n(&page->error, __ATOMIC_ACQUIRE) == 0; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(page->error, uint32_t{XENSTORE_ERROR_RINGIDX});
  EXPECT_TRUE(dom0_->Write("/still/serving", "yes").has_value());
  EXPECT_EQ(*dom0_->Read("/still/serving"), "yes");
}

TEST_F(RingTransportTest, OversizedPayloadMarksProtocolError) {
  Guest g = Introduce(10);
  std::string header(kHeaderSize, '\0');
  EncodeHeader(Header{XS_WRITE, 1, 0, 5000}, header.data());
  g.SendBytes(header);
  for (int i = 0; i < 200 && __atomic_load_n(&g.page()->error, __ATOMIC_ACQUIRE) == 0; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(g.page()->error, uint32_t{XENSTORE_ERROR_PROTO});
  EXPECT_TRUE(dom0_->Write("/after/proto", "ok").has_value());
}

TEST_F(RingTransportTest, ReconnectDropsWatchesAndResetsIndexes) {
  Guest g = Introduce(11);
  EXPECT_EQ(g.Call(MsgType::kWatch, Z("x") + Z("t")), std::string("OK", 3));
  ASSERT_TRUE(g.Receive().has_value());  // the initial event
  __atomic_store_n(&g.page()->connection, XENSTORE_RECONNECT, __ATOMIC_RELEASE);
  guest_port_->KickStore();
  for (int i = 0; i < 200 && __atomic_load_n(&g.page()->connection, __ATOMIC_ACQUIRE) != 0; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(g.page()->connection, uint32_t{XENSTORE_CONNECTED});
  EXPECT_EQ(g.page()->req_prod, 0u);
  EXPECT_EQ(g.page()->rsp_prod, 0u);
  Guest fresh(guest_port_);
  // The old watch is gone: registering it again is not a duplicate.
  EXPECT_EQ(fresh.Call(MsgType::kWatch, Z("x") + Z("t")), std::string("OK", 3));
}

TEST_F(RingTransportTest, GuestThatNeverReadsRepliesCannotGrowTheStore) {
  Guest g = Introduce(12);
  // Fill the request ring with reads again and again without ever consuming replies: the store
  // stops reading once its bounded queue is full, and keeps serving dom0.
  std::string req;
  AppendMessage(req, MsgType::kRead, 1, 0, Z("/local/domain/12"));
  auto* page = g.page();
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  int idle = 0;
  while (std::chrono::steady_clock::now() < deadline && idle < 100) {
    const uint32_t cons = __atomic_load_n(&page->req_cons, __ATOMIC_ACQUIRE);
    const uint32_t prod = page->req_prod;
    if (XENSTORE_RING_SIZE - (prod - cons) < req.size()) {
      ++idle;  // the store has stopped taking requests, or is slow: wait a little
      std::this_thread::sleep_for(2ms);
      continue;
    }
    idle = 0;
    for (size_t k = 0; k < req.size(); ++k) page->req[MASK_XENSTORE_IDX(prod + k)] = req[k];
    __atomic_store_n(&page->req_prod, prod + static_cast<uint32_t>(req.size()), __ATOMIC_RELEASE);
    guest_port_->KickStore();
  }
  // The reply ring is full, the store holds at most its bounded queue, and it stopped reading.
  EXPECT_EQ(page->rsp_prod - page->rsp_cons, uint32_t{XENSTORE_RING_SIZE});
  EXPECT_GT(page->req_prod - page->req_cons, uint32_t{XENSTORE_RING_SIZE} - 2 * req.size());
  EXPECT_TRUE(dom0_->Write("/dom0/alive", "1").has_value());
  EXPECT_EQ(*dom0_->Read("/dom0/alive"), "1");
}

TEST_F(RingTransportTest, ReleaseFiresReleaseDomainAndRemovesOwnedNodes) {
  Guest g = Introduce(13);
  EXPECT_EQ(g.Call(MsgType::kWrite, Z("mine") + "v"), std::string("OK", 3));
  ASSERT_TRUE(dom0_->Watch("@releaseDomain", "rel").has_value());
  ASSERT_TRUE(dom0_->NextEvent(1000).has_value());  // initial
  ASSERT_TRUE(dom0_->Call(MsgType::kRelease, Z("13")).has_value());
  auto ev = dom0_->NextEvent(2000);
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->path, "@releaseDomain");
  EXPECT_EQ(dom0_->Read("/local/domain/13/mine").error().code, ENOENT);
  EXPECT_EQ(dom0_->Read("/local/domain/13").error().code, ENOENT);
  EXPECT_EQ(*dom0_->Call(MsgType::kIsDomainIntroduced, Z("13")), std::string("F", 2));
}

TEST_F(RingTransportTest, GuestPublishingMoreWhileTheStoreReadsWithoutNotifyingIsStillServed) {
  // Linux's xenbus sends each request in chunks and skips the notification for a chunk while
  // the store has not consumed the previous one. The pauses between chunks vary so that, over
  // the run, chunks land at every point of the store's read, including between its reading the
  // producer index and moving the consumer index. A store that does not look again there
  // never answers that request (seen on real Xen: a domU's or dom0's xenbus hung in xs_talkv).
  Introduce(14);
  LinuxLikeGuest g(guest_port_);
  std::minstd_rand rng(14);
  for (int i = 0; i < 3000; ++i) {
    const std::string args[] = {Z("k" + std::to_string(i % 7)), std::to_string(i)};
    const auto pause = std::chrono::microseconds(rng() % 40);
    auto r = g.Call(MsgType::kWrite, args, pause);
    ASSERT_TRUE(r.has_value()) << "request " << i << " never answered";
    ASSERT_EQ(*r, std::string("OK", 3));
  }
  EXPECT_EQ(*dom0_->Read("/local/domain/14/k3"), "2999");
}

TEST_F(RingTransportTest, GuestSignallingRoomOnlyWhenItSawTheRingFullGetsLongReplies) {
  // Replies almost twice the ring's size: the store fills the ring and must carry on when the
  // guest makes room, though Linux's xenbus signals room only if it found the ring full when it
  // started reading, which races with the store filling it.
  Introduce(15);
  LinuxLikeGuest g(guest_port_);
  const std::string big(1900, 'b');  // within the node-size quota
  const std::string write_args[] = {Z("big"), big};
  ASSERT_EQ(g.Call(MsgType::kWrite, write_args, {}), std::string("OK", 3));
  std::minstd_rand rng(15);
  for (int i = 0; i < 1000; ++i) {
    const std::string args[] = {Z("big")};
    auto r = g.Call(MsgType::kRead, args, std::chrono::microseconds(rng() % 40));
    ASSERT_TRUE(r.has_value()) << "reply " << i << " never completed";
    ASSERT_EQ(*r, big);
  }
}

TEST_F(RingTransportTest, RequestPublishedBeforeTheGuestWasIntroducedIsServed) {
  // A kernel's xenbus may write its first request before the store binds the channel (dom0's,
  // when the store starts after the kernel): that notification reached no one.
  before_introduce_ = [](MemoryRingPort* port) {
    std::string req;
    AppendMessage(req, MsgType::kGetDomainPath, 77, 0, Z("16"));
    xenstore_domain_interface* page = port->page();
    for (size_t i = 0; i < req.size(); ++i) page->req[i] = req[i];
    __atomic_store_n(&page->req_prod, static_cast<uint32_t>(req.size()), __ATOMIC_RELEASE);
  };
  Guest g = Introduce(16);
  // Wait without notifying (Guest::Receive would).
  for (int i = 0; i < 400 && __atomic_load_n(&g.page()->rsp_prod, __ATOMIC_ACQUIRE) == 0; ++i)
    std::this_thread::sleep_for(5ms);
  ASSERT_NE(__atomic_load_n(&g.page()->rsp_prod, __ATOMIC_ACQUIRE), 0u) << "never read";
  auto m = g.Receive();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->header.req_id, 77u);
  EXPECT_EQ(m->payload, Z("/local/domain/16"));
}

}  // namespace
}  // namespace xpv::xenstore
