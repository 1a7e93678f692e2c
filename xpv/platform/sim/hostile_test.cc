// Hostile peers on xpv-hv's sockets, each named after its attack. The daemon is a real process:
// after every test it must still be alive, still serve, and hold no more descriptors than before.
#include <fcntl.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <vector>

#include "xpv/platform/sim/testing/daemon_fixture.h"

namespace xpv::platform::sim::testing {
namespace {

using wire::Op;

class HostileTest : public DaemonTest {
 protected:
  void SetUp() override {
    DaemonTest::SetUp();
    (void)dom0_->control()->List();  // the daemon has done some work before we count
    fds_before_ = DaemonFds();
  }
  void TearDown() override {
    // Still serving...
    if (dom0_) {
      auto list = dom0_->control()->List();
      EXPECT_TRUE(list.has_value()) << "xpv-hv stopped answering";
    }
    // ... and nothing leaked once the attackers are gone.
    EXPECT_TRUE(WaitFor([&] { return DaemonFds() <= fds_before_; }))
        << DaemonFds() << " fds now, " << fds_before_ << " before";
    DaemonTest::TearDown();
  }

  static std::vector<uint8_t> Msg(Op op, size_t size, uint32_t seq = 7) {
    std::vector<uint8_t> b(std::max(size, sizeof(wire::Header)));
    wire::Header h{wire::kMagic, wire::kVersion, static_cast<uint16_t>(op),
                   static_cast<uint32_t>(size), seq};
    std::memcpy(b.data(), &h, sizeof h);
    b.resize(size);
    return b;
  }
  template <typename T>
  static std::vector<uint8_t> Struct(Op op, T body) {
    body.h = wire::Header{wire::kMagic, wire::kVersion, static_cast<uint16_t>(op), sizeof body, 9};
    std::vector<uint8_t> b(sizeof body);
    std::memcpy(b.data(), &body, sizeof body);
    return b;
  }
  // Sends raw bytes; returns the reply's error (or -1 if no well-formed reply came back).
  static int Exchange(int fd, const std::vector<uint8_t>& bytes, std::span<const int> fds = {}) {
    if (!wire::SendMessage(fd, bytes, fds, false)) return -1;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) return -1;
    auto r = wire::ReceiveMessage(fd, wire::kMaxMessage, wire::kMaxReplyFds, true);
    if (!r || r->bytes.size() < sizeof(wire::Reply)) return -1;
    return wire::ReadStruct<wire::Reply>(r->bytes).error;
  }
  UniqueFd HelloDom0() {
    UniqueFd fd = RawConnect();
    wire::HelloRequest h{};
    h.role = static_cast<uint32_t>(wire::Role::kDom0);
    EXPECT_EQ(Exchange(fd.get(), Struct(Op::kHello, h)), 0);
    return fd;
  }

  // After a bind to dom0's own `offer` made under a descriptor shortage (now lifted), whatever
  // became of it: closing what it bound unbinds the offer again, and a second bind succeeds.
  void ExpectOfferSurvives(EvtchnPort offer, const Result<EvtchnPort>& bound, size_t k) {
    if (bound) {
      ASSERT_TRUE(dom0_->events().Close(*bound)) << "k=" << k;
    }
    auto again = dom0_->events().BindInterdomain(kDom0, offer);
    ASSERT_TRUE(again.has_value()) << "k=" << k << ": the offer was lost to a failed bind";
    ASSERT_TRUE(dom0_->events().Close(*again));
  }

  size_t fds_before_ = 0;
};

TEST_F(HostileTest, ShortAndMalformedHeaders) {
  UniqueFd fd = RawConnect();
  for (size_t n : {1u, 4u, 15u})
    EXPECT_EQ(Exchange(fd.get(), std::vector<uint8_t>(n, 0xFF)), EINVAL) << n;
  auto bad_magic = Msg(Op::kHello, 16);
  bad_magic[0] ^= 1;
  EXPECT_EQ(Exchange(fd.get(), bad_magic), EPROTO);
  auto bad_version = Msg(Op::kHello, 16);
  bad_version[4] = 99;
  EXPECT_EQ(Exchange(fd.get(), bad_version), EPROTO);
  auto lying_length = Msg(Op::kHello, sizeof(wire::HelloRequest));
  lying_length[8] = 200;
  EXPECT_EQ(Exchange(fd.get(), lying_length), EINVAL);
  EXPECT_EQ(Exchange(fd.get(), Msg(static_cast<Op>(999), 16)), ENOTCONN) << "before hello";
  EXPECT_EQ(Exchange(fd.get(), Msg(Op::kGrantMap, 24)), ENOTCONN) << "before hello";
  EXPECT_EQ(Exchange(fd.get(), Msg(Op::kHello, 20)), EINVAL) << "short hello";
}

TEST_F(HostileTest, BadHellos) {
  UniqueFd fd = RawConnect();
  wire::HelloRequest h{};
  h.role = 77;
  EXPECT_EQ(Exchange(fd.get(), Struct(Op::kHello, h)), EINVAL);
  h.role = static_cast<uint32_t>(wire::Role::kDomain);
  EXPECT_EQ(Exchange(fd.get(), Struct(Op::kHello, h)), EPERM)
      << "a domain role needs a domain connection";
  h.role = static_cast<uint32_t>(wire::Role::kService);
  std::memset(h.name, 'x', sizeof h.name);  // no NUL
  h.memory_mib = 4;
  EXPECT_EQ(Exchange(fd.get(), Struct(Op::kHello, h)), EINVAL);
  h.name[5] = 0;
  h.memory_mib = ~uint64_t{0};
  EXPECT_EQ(Exchange(fd.get(), Struct(Op::kHello, h)), EINVAL);
  h.memory_mib = 4;
  h.mode = 200;
  EXPECT_EQ(Exchange(fd.get(), Struct(Op::kHello, h)), EINVAL);
  h.role = static_cast<uint32_t>(wire::Role::kDom0);
  EXPECT_EQ(Exchange(fd.get(), Struct(Op::kHello, h)), 0);
  EXPECT_EQ(Exchange(fd.get(), Struct(Op::kHello, h)), EISCONN) << "hello twice";
}

TEST_F(HostileTest, MalformedBatches) {
  UniqueFd fd = HelloDom0();
  for (Op op : {Op::kGrantMap, Op::kGrantUnmap, Op::kGrantCopy}) {
    wire::BatchRequest b{};
    b.count = kMaxBatch + 1;
    EXPECT_EQ(Exchange(fd.get(), Struct(op, b)), EINVAL) << "count over the limit";
    b.count = 0xFFFFFFFF;
    EXPECT_EQ(Exchange(fd.get(), Struct(op, b)), EINVAL) << "count that overflows";
    b.count = 3;  // but no entries
    EXPECT_EQ(Exchange(fd.get(), Struct(op, b)), EINVAL) << "short batch";
    auto longer = Struct(op, b);
    longer.resize(longer.size() + 3 * 40 + 1);
    const uint32_t len = static_cast<uint32_t>(longer.size());
    std::memcpy(longer.data() + offsetof(wire::Header, length), &len, sizeof len);
    EXPECT_EQ(Exchange(fd.get(), longer), EINVAL) << "trailing bytes";
    EXPECT_EQ(Exchange(fd.get(), Msg(op, 20)), EINVAL) << "shorter than a batch header";
  }
  for (Op op : {Op::kEvtchnAllocUnbound, Op::kEvtchnBindInterdomain, Op::kEvtchnSend,
                Op::kEvtchnClose, Op::kEvtchnStatus, Op::kDomainDestroy, Op::kDomainList,
                Op::kMapForeign, Op::kTakeDead, Op::kDomainCreate}) {
    EXPECT_EQ(Exchange(fd.get(), Msg(op, 17)), EINVAL) << static_cast<int>(op);
    EXPECT_EQ(Exchange(fd.get(), Msg(op, 4000)), EINVAL) << static_cast<int>(op);
  }
}

TEST_F(HostileTest, BadGrantOpsGetPerEntryStatuses) {
  UniqueFd fd = HelloDom0();
  // 128 maps of nonsense: each entry gets its own status, the request as a whole succeeds.
  wire::BatchRequest b{};
  b.count = kMaxBatch;
  auto bytes = Struct(Op::kGrantMap, b);
  std::mt19937 rng(1);
  for (uint32_t i = 0; i < kMaxBatch; ++i) {
    wire::MapEntry e{static_cast<uint32_t>(rng()), static_cast<uint32_t>(rng()),
                     static_cast<uint32_t>(rng()), static_cast<uint32_t>(rng())};
    bytes.insert(bytes.end(), reinterpret_cast<uint8_t*>(&e), reinterpret_cast<uint8_t*>(&e + 1));
  }
  uint32_t len = static_cast<uint32_t>(bytes.size());
  std::memcpy(bytes.data() + 8, &len, 4);
  EXPECT_EQ(Exchange(fd.get(), bytes), 0);
  // Copies of nonsense, likewise.
  bytes = Struct(Op::kGrantCopy, b);
  for (uint32_t i = 0; i < kMaxBatch; ++i) {
    uint8_t op[sizeof(gnttab_copy_t)];
    for (auto& x : op) x = static_cast<uint8_t>(rng());
    bytes.insert(bytes.end(), op, op + sizeof op);
  }
  len = static_cast<uint32_t>(bytes.size());
  std::memcpy(bytes.data() + 8, &len, 4);
  EXPECT_EQ(Exchange(fd.get(), bytes), 0);
}

TEST_F(HostileTest, BadCreateRequests) {
  UniqueFd fd = HelloDom0();
  wire::CreateRequest c{};
  c.memory_mib = 2;
  c.grant_frames = 4;
  wire::SetNameField(c.name, "evil");
  auto with_argv = [&](uint32_t argc, std::string blob) {
    c.argc = argc;
    c.argv_bytes = static_cast<uint32_t>(blob.size());
    auto bytes = Struct(Op::kDomainCreate, c);
    bytes.insert(bytes.end(), blob.begin(), blob.end());
    uint32_t len = static_cast<uint32_t>(bytes.size());
    std::memcpy(bytes.data() + 8, &len, 4);
    return Exchange(fd.get(), bytes);
  };
  EXPECT_EQ(with_argv(1, std::string("no-nul")), EINVAL);
  EXPECT_EQ(with_argv(2, std::string("one\0", 4)), EINVAL) << "argc says two";
  EXPECT_EQ(with_argv(1, std::string("a\0b\0", 4)), EINVAL) << "bytes left over";
  EXPECT_EQ(with_argv(1, std::string("\0", 1)), EINVAL) << "empty program";
  EXPECT_EQ(with_argv(100000, std::string("a\0", 2)), EINVAL);
  c.argv_bytes = 0xFFFFFFFF;
  c.argc = 1;
  EXPECT_EQ(Exchange(fd.get(), Struct(Op::kDomainCreate, c)), EINVAL)
      << "argv_bytes past the message";
  c.privilege = static_cast<uint8_t>(Privilege::kControl);
  EXPECT_EQ(with_argv(0, ""), EINVAL) << "a second domain 0";
  c.privilege = 0;
  c.vcpus = kMaxVcpus + 1;
  EXPECT_EQ(with_argv(0, ""), EINVAL) << "too many vcpus";
  c.vcpus = 0xFFFFFFFF;
  EXPECT_EQ(with_argv(0, ""), EINVAL) << "too many vcpus";
  c.vcpus = 0;
  c.memory_mib = 0;
  EXPECT_EQ(with_argv(0, ""), EINVAL);
  EXPECT_EQ(dom0_->control()->List()->size(), 1u) << "nothing was created";
}

TEST_F(HostileTest, UnprivilegedDomainAsksForControl) {
  SimDomainSpec spec;
  spec.name = "guest";
  spec.memory_mib = 2;
  auto d = dom0_->sim_control()->CreateDomain(spec);
  ASSERT_TRUE(d.has_value());
  UniqueFd fd = std::move(d->connection);
  wire::HelloRequest h{};
  h.role = static_cast<uint32_t>(wire::Role::kDom0);
  EXPECT_EQ(Exchange(fd.get(), Struct(Op::kHello, h)), EPERM) << "a domain cannot claim to be dom0";
  h.role = static_cast<uint32_t>(wire::Role::kDomain);
  EXPECT_EQ(Exchange(fd.get(), Struct(Op::kHello, h)), 0);
  wire::DomainRequest r{};
  for (Op op : {Op::kDomainDestroy, Op::kDomainList, Op::kMapForeign, Op::kTakeDead}) {
    EXPECT_EQ(Exchange(fd.get(), Struct(op, r)), EPERM) << static_cast<int>(op);
  }
  wire::CreateRequest c{};
  EXPECT_EQ(Exchange(fd.get(), Struct(Op::kDomainCreate, c)), EPERM);
}

TEST_F(HostileTest, RandomMessages) {
  std::mt19937 rng(42);
  UniqueFd fd = HelloDom0();
  for (int i = 0; i < 20000; ++i) {
    const size_t size = rng() % 300;
    std::vector<uint8_t> bytes(size);
    for (auto& b : bytes) b = static_cast<uint8_t>(rng());
    if (size >= sizeof(wire::Header) && (i & 1)) {
      // A plausible header over random bodies reaches the handlers.
      wire::Header h{wire::kMagic, wire::kVersion, static_cast<uint16_t>(rng() % 40),
                     static_cast<uint32_t>(size), static_cast<uint32_t>(i)};
      // Keep dom0's toys, and run no random programs.
      if (h.op == static_cast<uint16_t>(Op::kDomainDestroy) ||
          h.op == static_cast<uint16_t>(Op::kDomainCreate)) {
        h.op = 0;
      }
      std::memcpy(bytes.data(), &h, sizeof h);
    }
    if (size == 0) continue;  // a zero-length message is end of connection
    ASSERT_NE(Exchange(fd.get(), bytes), -1) << "no reply to message " << i;
  }
  // Whatever the random requests made (domains, ports) goes with the connection.
  fd.reset();
  EXPECT_TRUE(WaitFor([&] { return dom0_->control()->List()->size() == 1; }));
}

TEST_F(HostileTest, FdFlood) {
  UniqueFd fd = HelloDom0();
  std::vector<int> fds;
  for (int i = 0; i < 250; ++i) fds.push_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(Exchange(fd.get(), Msg(Op::kTakeDead, sizeof(wire::DomainRequest)), fds), EINVAL)
        << "requests carry no fds";
  }
  for (int f : fds) ::close(f);
  // TearDown checks that every fd the daemon received was closed.
}

TEST_F(HostileTest, ClientThatNeverReads) {
  UniqueFd fd = HelloDom0();
  ASSERT_EQ(::fcntl(fd.get(), F_SETFL, O_NONBLOCK), 0);
  wire::DomainRequest r{};
  auto bytes = Struct(Op::kDomainList, r);  // a large reply each
  int sent = 0;
  for (int i = 0; i < 100000; ++i) {
    if (::send(fd.get(), bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) break;
    ++sent;
  }
  EXPECT_LT(sent, 100000) << "the daemon stopped reading once our replies piled up";
  // Everyone else is still served.
  EXPECT_TRUE(dom0_->control()->List().has_value());
  auto other = ConnectSimDom0(socket_);
  ASSERT_TRUE(other.has_value());
  EXPECT_TRUE((*other)->events().AllocUnbound(kDom0).has_value());
}

TEST_F(HostileTest, ConnectionFlood) {
  std::vector<UniqueFd> conns;
  for (int i = 0; i < 300; ++i) conns.push_back(RawConnect());
  EXPECT_TRUE(dom0_->control()->List().has_value());
  // Half of them say hello and allocate ports; all vanish.
  for (size_t i = 0; i < conns.size(); i += 2) {
    wire::HelloRequest h{};
    h.role = static_cast<uint32_t>(wire::Role::kService);
    h.memory_mib = 1;
    wire::SetNameField(h.name, "flood" + std::to_string(i));
    ASSERT_EQ(Exchange(conns[i].get(), Struct(Op::kHello, h)), 0) << i;
    wire::EvtchnRequest e{};
    e.domid = 0;
    ASSERT_EQ(Exchange(conns[i].get(), Struct(Op::kEvtchnAllocUnbound, e)), 0);
  }
  conns.clear();
  EXPECT_TRUE(WaitFor([&] { return dom0_->control()->List()->size() == 1; }));
  EXPECT_EQ(dom0_->control()->TakeDead().size(), 150u);
}

TEST_F(HostileTest, OversizedMessage) {
  UniqueFd fd = HelloDom0();
  std::vector<uint8_t> big = Msg(Op::kGrantCopy, wire::kMaxMessage + 5000);
  EXPECT_EQ(Exchange(fd.get(), big), EINVAL);
  EXPECT_EQ(Exchange(fd.get(), Msg(Op::kTakeDead, sizeof(wire::DomainRequest))), 0)
      << "still in step";
}

TEST_F(HostileTest, EventChannelAbuse) {
  UniqueFd fd = HelloDom0();
  wire::EvtchnRequest e{};
  for (uint32_t port : {0u, 1u, kMaxPorts, 0xFFFFFFFFu}) {
    e.port = port;
    EXPECT_EQ(Exchange(fd.get(), Struct(Op::kEvtchnSend, e)), EINVAL) << port;
    EXPECT_EQ(Exchange(fd.get(), Struct(Op::kEvtchnClose, e)), EINVAL) << port;
  }
  e.domid = 0xFFFFFFFF;
  e.port = 1;
  EXPECT_EQ(Exchange(fd.get(), Struct(Op::kEvtchnBindInterdomain, e)), ESRCH);
  EXPECT_EQ(Exchange(fd.get(), Struct(Op::kEvtchnAllocUnbound, e)), EINVAL);
  // Allocate every port there is: ENOSPC, not a crash or a leak.
  e.domid = 0;
  int ok = 0;
  for (uint32_t i = 0; i < kMaxPorts + 10; ++i)
    ok += Exchange(fd.get(), Struct(Op::kEvtchnAllocUnbound, e)) == 0;
  EXPECT_EQ(ok, static_cast<int>(kMaxPorts) - 1) << "every port but the reserved port 0";
}

TEST_F(HostileTest, DescriptorExhaustionDuringABindLeavesTheOfferOpen) {
  // Another domain has used up the daemon's descriptors (here: its limit lowered to what it holds
  // plus k). A bind that then fails must not leave the peer's port bound to a port nobody can
  // name: the offer must still be there for the next try. Each k lands the shortage at another
  // step of the bind (the port's socket pair, the copy of the peer's end).
  auto offer = dom0_->events().AllocUnbound(kDom0);
  ASSERT_TRUE(offer.has_value());
  rlimit normal{};
  ASSERT_EQ(::prlimit(pid_, RLIMIT_NOFILE, nullptr, &normal), 0);
  int failed = 0;
  for (rlim_t k = 0; k <= 4; ++k) {
    const rlim_t open = DaemonFds() - 2;  // less "." and ".."
    rlimit tight{open + k, normal.rlim_max};
    ASSERT_EQ(::prlimit(pid_, RLIMIT_NOFILE, &tight, nullptr), 0);
    auto bound = dom0_->events().BindInterdomain(kDom0, *offer);
    ASSERT_EQ(::prlimit(pid_, RLIMIT_NOFILE, &normal, nullptr), 0);
    failed += !bound;
    ExpectOfferSurvives(*offer, bound, k);
  }
  EXPECT_GT(failed, 0) << "no k was tight enough to fail a bind";
  EXPECT_TRUE(dom0_->events().Close(*offer));
}

TEST_F(HostileTest, ClientOutOfDescriptorsDuringABindLeavesTheOfferOpen) {
  // This time the domain itself has no room for the descriptors of the reply: the daemon bound
  // the port, the client cannot take it. The client must close it again, or the peer's offer is
  // gone and the daemon holds the port until the session ends.
  auto offer = dom0_->events().AllocUnbound(kDom0);
  ASSERT_TRUE(offer.has_value());
  rlimit normal{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &normal), 0);
  int highest = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd"))
    highest = std::max(highest, std::atoi(e.path().filename().c_str()));
  int failed = 0;
  for (size_t k = 0; k <= 2; ++k) {
    // Leave exactly k descriptors free: a low limit, filled up, then k given back.
    rlimit tight{static_cast<rlim_t>(highest) + 32, normal.rlim_max};
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &tight), 0);
    std::vector<UniqueFd> fill;
    for (UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC)); fd.valid();
         fd.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC)))
      fill.push_back(std::move(fd));
    fill.resize(fill.size() - std::min(k, fill.size()));
    auto bound = dom0_->events().BindInterdomain(kDom0, *offer);
    fill.clear();
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &normal), 0);
    if (!bound) {
      EXPECT_EQ(bound.error().code, EMFILE) << "k=" << k;
    }
    failed += !bound;
    ExpectOfferSurvives(*offer, bound, k);
  }
  EXPECT_EQ(failed, 2) << "k = 0 and 1 leave no room for the reply's two descriptors";
  EXPECT_TRUE(dom0_->events().Close(*offer));
}

}  // namespace
}  // namespace xpv::platform::sim::testing
