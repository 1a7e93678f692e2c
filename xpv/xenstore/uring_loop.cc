// The io_uring loop. Everything the loop waits on stays armed in the kernel: a multishot accept
// on the listener, a multishot receive per client drawing from one ring of provided buffers (so an
// idle client holds no buffer), a multishot poll per other descriptor. Replies are send
// submissions, queued during an iteration and submitted by the io_uring_enter(2) that waits for
// the next one, after the server has flushed the journal.
#include <liburing.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "xpv/xenstore/event_loop.h"

namespace xpv::xenstore {

namespace {

constexpr unsigned kQueueDepth = 256;
// Provided receive buffers, shared by all clients. A request is at most 4 KiB + 16 bytes
// (xs_wire.h XENSTORE_PAYLOAD_MAX), so a full one spans two.
constexpr unsigned kBufferCount = 256;  // a power of two (io_uring_buf_ring_mask)
constexpr unsigned kBufferSize = 4096;
constexpr uint16_t kBufferGroup = 0;

// What a completion is for: the low bits of its user_data; the rest points at the object.
enum class Op : uint64_t { kIgnore = 0, kPoll = 1, kAccept = 2, kRecv = 3, kSend = 4 };
constexpr uint64_t kOpMask = 7;

uint64_t Tag(const void* object, Op op) {
  const auto bits = reinterpret_cast<uintptr_t>(object);
  XPV_CHECK((bits & kOpMask) == 0);
  return bits | static_cast<uint64_t>(op);
}

// A completion, copied out of the ring before it is handled.
struct Completion {
  uint64_t user_data;
  int32_t res;
  uint32_t flags;

  bool more() const { return flags & IORING_CQE_F_MORE; }
};

struct PollReg {
  int fd;
  uint32_t events;
  Pollable* pollable;  // null once unwatched
  bool armed = false;
};

struct Listener {
  UniqueFd fd;
  std::function<void(UniqueFd)> on_accept;
};

class UringStream final : public Stream {
 public:
  UringStream(UniqueFd fd, StreamHandler* handler) : fd(std::move(fd)), handler(handler) {}

  // Whether the kernel still holds a request on it.
  bool busy() const { return recv_armed || send_armed; }

  UniqueFd fd;
  StreamHandler* handler;  // null once closed
  std::string sending;     // the send in flight: stays put until its completion
  size_t sent = 0;         // of `sending`
  bool want_recv = true;
  bool recv_armed = false;
  bool send_armed = false;
};

class UringLoop final : public EventLoop {
 public:
  static Result<std::unique_ptr<EventLoop>> Create() {
    std::unique_ptr<UringLoop> loop(new UringLoop());
    XPV_TRY(loop->Init());
    return std::unique_ptr<EventLoop>(std::move(loop));
  }

  ~UringLoop() override {
    if (!ring_ready_) return;
    CancelEverything();
    io_uring_queue_exit(&ring_);
    if (buf_ring_) ::munmap(buf_ring_, BufRingBytes());
  }

  const char* name() const override { return "io_uring"; }

  Status Watch(int fd, uint32_t events, Pollable* p) override {
    if (polls_.contains(fd)) return Err(EEXIST, "fd already watched");
    auto reg = std::make_unique<PollReg>(PollReg{fd, events, p});
    ArmPoll(reg.get());
    polls_[fd] = std::move(reg);
    return Ok();
  }

  void Unwatch(int fd) override {
    auto it = polls_.find(fd);
    if (it == polls_.end()) return;
    PollReg* reg = it->second.get();
    reg->pollable = nullptr;
    if (reg->armed) {
      io_uring_sqe* sqe = Sqe();
      io_uring_prep_poll_remove(sqe, Tag(reg, Op::kPoll));
      io_uring_sqe_set_data64(sqe, Tag(nullptr, Op::kIgnore));
    }
    // Freed once its last completion is in (Sweep).
    dead_polls_.push_back(std::move(it->second));
    polls_.erase(it);
  }

  Status Listen(UniqueFd fd, std::function<void(UniqueFd)> on_accept) override {
    listener_ = std::make_unique<Listener>(Listener{std::move(fd), std::move(on_accept)});
    ArmAccept();
    return Ok();
  }

  Result<Stream*> AddStream(UniqueFd fd, StreamHandler* handler) override {
    auto stream = std::make_unique<UringStream>(std::move(fd), handler);
    UringStream* s = stream.get();
    ArmRecv(s);
    streams_.emplace(s, std::move(stream));
    return static_cast<Stream*>(s);
  }

  void SetReceiving(Stream* stream, bool on) override {
    UringStream* s = Cast(stream);
    if (s->want_recv == on) return;
    s->want_recv = on;
    if (on && !s->recv_armed) ArmRecv(s);
    // Pausing cancels the receive; its final completion re-arms it if receiving is back on.
    if (!on && s->recv_armed) {
      io_uring_sqe* sqe = Sqe();
      io_uring_prep_cancel64(sqe, Tag(s, Op::kRecv), 0);
      io_uring_sqe_set_data64(sqe, Tag(nullptr, Op::kIgnore));
    }
  }

  void Send(Stream* stream, std::string bytes) override {
    UringStream* s = Cast(stream);
    XPV_CHECK(!s->send_armed);
    s->sending = std::move(bytes);
    s->sent = 0;
    ArmSend(s);
  }

  void CloseStream(Stream* stream) override {
    auto it = streams_.find(Cast(stream));
    if (it == streams_.end()) return;
    UringStream* s = it->second.get();
    s->handler = nullptr;
    s->want_recv = false;
    if (s->busy()) {
      // The descriptor stays open until the kernel lets go of the requests (Sweep closes it).
      io_uring_sqe* sqe = Sqe();
      io_uring_prep_cancel_fd(sqe, s->fd.get(), IORING_ASYNC_CANCEL_ALL);
      io_uring_sqe_set_data64(sqe, Tag(nullptr, Op::kIgnore));
    }
    closing_.push_back(std::move(it->second));
    streams_.erase(it);
  }

  Status Wait(int timeout_ms) override {
    int rc;
    if (timeout_ms < 0) {
      rc = io_uring_submit_and_wait(&ring_, 1);
    } else {
      __kernel_timespec ts{};
      ts.tv_sec = timeout_ms / 1000;
      ts.tv_nsec = static_cast<long long>(timeout_ms % 1000) * 1000000;
      io_uring_cqe* cqe = nullptr;
      rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
    }
    // ETIME: nothing happened; EINTR: a signal (Stop's eventfd says whether to go on); EAGAIN,
    // EBUSY, ENOMEM: the kernel is short of memory for requests or completions for now, and
    // reaping frees some. Anything else means the ring itself is unusable.
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY && rc != -ENOMEM) {
      return Err(-rc, "io_uring_enter");
    }
    Reap();
    Sweep();
    return Ok();
  }

 private:
  UringLoop() = default;

  static UringStream* Cast(Stream* s) { return static_cast<UringStream*>(s); }
  static size_t BufRingBytes() { return kBufferCount * sizeof(io_uring_buf); }
  char* Buffer(unsigned bid) { return buffers_.get() + size_t{bid} * kBufferSize; }

  Status Init() {
    io_uring_params params{};
    // SUBMIT_ALL: one failing submission does not hold back the rest. COOP_TASKRUN: completions
    // are run when the loop enters the kernel anyway, not by interrupting it.
    params.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
    if (int rc = io_uring_queue_init_params(kQueueDepth, &ring_, &params); rc < 0) {
      return Err(-rc, "io_uring_setup");
    }
    ring_ready_ = true;
    // Waiting with a timeout in the same system call as the submission (Linux 5.11).
    if (!(params.features & IORING_FEAT_EXT_ARG)) return Err(ENOSYS, "no IORING_FEAT_EXT_ARG");

    void* mem =
        ::mmap(nullptr, BufRingBytes(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return Err(errno, "mmap");
    buf_ring_ = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uintptr_t>(buf_ring_);
    reg.ring_entries = kBufferCount;
    reg.bgid = kBufferGroup;
    if (int rc = io_uring_register_buf_ring(&ring_, &reg, 0); rc < 0) {
      return Err(-rc, "io_uring_register_buf_ring");
    }
    io_uring_buf_ring_init(buf_ring_);
    buffers_ = std::make_unique_for_overwrite<char[]>(size_t{kBufferCount} * kBufferSize);
    for (unsigned bid = 0; bid < kBufferCount; ++bid) {
      io_uring_buf_ring_add(buf_ring_, Buffer(bid), kBufferSize, static_cast<uint16_t>(bid),
                            io_uring_buf_ring_mask(kBufferCount), static_cast<int>(bid));
    }
    io_uring_buf_ring_advance(buf_ring_, kBufferCount);
    return ProbeMultishotRecv();
  }

  // Multishot receive came with Linux 6.0, after provided-buffer rings (5.19): try one on a
  // socket pair rather than trust a version number.
  Status ProbeMultishotRecv() {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      return Err(errno, "socketpair");
    }
    UniqueFd a(sv[0]), b(sv[1]);
    io_uring_sqe* sqe = Sqe();
    io_uring_prep_recv_multishot(sqe, a.get(), nullptr, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = kBufferGroup;
    io_uring_sqe_set_data64(sqe, Tag(nullptr, Op::kIgnore));
    if (::send(b.get(), "x", 1, MSG_NOSIGNAL) != 1) return Err(errno, "send");
    io_uring_cqe* cqe = nullptr;
    if (int rc = io_uring_submit_and_wait(&ring_, 1); rc < 0) return Err(-rc, "io_uring_enter");
    if (int rc = io_uring_peek_cqe(&ring_, &cqe); rc < 0) return Err(-rc, "io_uring_peek_cqe");
    const Completion c{cqe->user_data, cqe->res, cqe->flags};
    io_uring_cqe_seen(&ring_, cqe);
    if (c.flags & IORING_CQE_F_BUFFER) RecycleBuffer(c.flags >> IORING_CQE_BUFFER_SHIFT);
    if (c.res != 1 || !c.more()) return Err(c.res < 0 ? -c.res : ENOSYS, "no multishot receive");
    b.reset();  // ends the receive: its final completion (end of stream) follows
    for (bool more = true; more;) {
      if (int rc = io_uring_wait_cqe(&ring_, &cqe); rc < 0) return Err(-rc, "io_uring_wait_cqe");
      more = cqe->flags & IORING_CQE_F_MORE;
      if (cqe->flags & IORING_CQE_F_BUFFER) RecycleBuffer(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
      io_uring_cqe_seen(&ring_, cqe);
    }
    return Ok();
  }

  // A submission slot; a full queue is submitted early. Safe at any point of an iteration: sends
  // are only queued after the journal flush, so nothing submitted early is a reply ahead of it.
  io_uring_sqe* Sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (!sqe) {
      io_uring_submit(&ring_);
      sqe = io_uring_get_sqe(&ring_);
    }
    XPV_CHECK(sqe != nullptr);  // a submission consumes the whole queue
    return sqe;
  }

  // Marks a prepared request as one whose completions go to `object` (Dispatch counts it off at
  // its final completion).
  void Expect(io_uring_sqe* sqe, const void* object, Op op) {
    io_uring_sqe_set_data64(sqe, Tag(object, op));
    ++in_flight_;
  }

  void ArmPoll(PollReg* reg) {
    io_uring_sqe* sqe = Sqe();
    io_uring_prep_poll_multishot(sqe, reg->fd, reg->events);
    Expect(sqe, reg, Op::kPoll);
    reg->armed = true;
  }

  void ArmAccept() {
    io_uring_sqe* sqe = Sqe();
    io_uring_prep_multishot_accept(sqe, listener_->fd.get(), nullptr, nullptr, SOCK_CLOEXEC);
    Expect(sqe, listener_.get(), Op::kAccept);
  }

  void ArmRecv(UringStream* s) {
    io_uring_sqe* sqe = Sqe();
    io_uring_prep_recv_multishot(sqe, s->fd.get(), nullptr, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = kBufferGroup;
    Expect(sqe, s, Op::kRecv);
    s->recv_armed = true;
  }

  void ArmSend(UringStream* s) {
    io_uring_sqe* sqe = Sqe();
    // MSG_WAITALL: the kernel retries a short send itself (stream sockets, Linux 5.19).
    io_uring_prep_send(sqe, s->fd.get(), s->sending.data() + s->sent, s->sending.size() - s->sent,
                       MSG_NOSIGNAL | MSG_WAITALL);
    Expect(sqe, s, Op::kSend);
    s->send_armed = true;
  }

  void RecycleBuffer(unsigned bid) {
    io_uring_buf_ring_add(buf_ring_, Buffer(bid), kBufferSize, static_cast<uint16_t>(bid),
                          io_uring_buf_ring_mask(kBufferCount), 0);
    io_uring_buf_ring_advance(buf_ring_, 1);
  }

  // Handles every completion in the ring, copying each batch out first: handlers queue new
  // submissions, which may submit early and complete more.
  void Reap() {
    Completion batch[64];
    while (true) {
      unsigned n = 0;
      unsigned head;
      io_uring_cqe* cqe;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        batch[n++] = Completion{cqe->user_data, cqe->res, cqe->flags};
        if (n == std::size(batch)) break;
      }
      if (n == 0) return;
      io_uring_cq_advance(&ring_, n);
      for (unsigned i = 0; i < n; ++i) Dispatch(batch[i]);
    }
  }

  static Op OpOf(const Completion& c) { return static_cast<Op>(c.user_data & kOpMask); }
  static bool Final(const Completion& c) { return OpOf(c) != Op::kIgnore && !c.more(); }

  void Dispatch(const Completion& c) {
    if (Final(c)) --in_flight_;
    void* object = reinterpret_cast<void*>(static_cast<uintptr_t>(c.user_data & ~kOpMask));
    switch (OpOf(c)) {
      case Op::kIgnore:
        return;
      case Op::kPoll:
        return OnPoll(static_cast<PollReg*>(object), c);
      case Op::kAccept:
        return OnAccept(c);
      case Op::kRecv:
        return OnRecv(static_cast<UringStream*>(object), c);
      case Op::kSend:
        return OnSend(static_cast<UringStream*>(object), c);
    }
  }

  void OnPoll(PollReg* reg, const Completion& c) {
    if (!c.more()) reg->armed = false;
    if (reg->pollable && c.res > 0) reg->pollable->OnReady(static_cast<uint32_t>(c.res));
    if (!reg->pollable || reg->armed) return;
    // A multishot poll ends when the kernel could not post a completion; an error is the
    // descriptor's, and polling it again would only repeat it.
    if (c.res < 0) {
      spdlog::warn("poll on fd {}: {}", reg->fd, std::strerror(-c.res));
      return;
    }
    ArmPoll(reg);
  }

  void OnAccept(const Completion& c) {
    if (c.res >= 0) {
      listener_->on_accept(UniqueFd(c.res));
    } else if (c.res != -EAGAIN && c.res != -EINTR) {
      spdlog::warn("accept: {}", std::strerror(-c.res));
    }
    if (!c.more()) ArmAccept();
  }

  void OnRecv(UringStream* s, const Completion& c) {
    if (!c.more()) s->recv_armed = false;
    if (c.flags & IORING_CQE_F_BUFFER) {
      const unsigned bid = c.flags >> IORING_CQE_BUFFER_SHIFT;
      if (s->handler && c.res > 0) {
        s->handler->OnReceived(std::string_view(Buffer(bid), static_cast<size_t>(c.res)));
      }
      RecycleBuffer(bid);
    }
    if (!s->handler) return;
    if (c.res == 0) return s->handler->OnClosed(nullptr);
    // ENOBUFS: every buffer was in use (they are all back now); ECANCELED: paused.
    if (c.res < 0 && c.res != -ENOBUFS && c.res != -ECANCELED) {
      return s->handler->OnClosed("recv failed");
    }
    if (s->want_recv && !s->recv_armed) ArmRecv(s);
  }

  void OnSend(UringStream* s, const Completion& c) {
    s->send_armed = false;
    if (!s->handler) return;
    if (c.res == -EINTR || c.res == -EAGAIN) return ArmSend(s);
    if (c.res < 0) return s->handler->OnClosed("send failed");
    s->sent += static_cast<size_t>(c.res);
    if (s->sent < s->sending.size()) return ArmSend(s);  // interrupted part way
    s->sent = 0;
    s->handler->OnSent(std::exchange(s->sending, {}));
  }

  // Frees what was closed once the kernel has let go of it.
  void Sweep() {
    std::erase_if(closing_, [](const auto& s) { return !s->busy(); });
    std::erase_if(dead_polls_, [](const auto& r) { return !r->armed; });
  }

  // Before the memory the kernel may write goes (receive buffers, send bytes): cancel every
  // request and wait, boundedly, for the cancellations. No handler runs any more.
  void CancelEverything() {
    io_uring_sqe* sqe = Sqe();
    io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
    io_uring_sqe_set_data64(sqe, Tag(nullptr, Op::kIgnore));
    io_uring_submit(&ring_);
    __kernel_timespec ts{};
    ts.tv_sec = 1;
    io_uring_cqe* cqe;
    while (in_flight_ > 0 && io_uring_wait_cqe_timeout(&ring_, &cqe, &ts) == 0) {
      if (Final(Completion{cqe->user_data, cqe->res, cqe->flags})) --in_flight_;
      io_uring_cqe_seen(&ring_, cqe);
    }
  }

  io_uring ring_{};
  bool ring_ready_ = false;
  size_t in_flight_ = 0;  // requests whose final completion has not come
  io_uring_buf_ring* buf_ring_ = nullptr;
  std::unique_ptr<char[]> buffers_;
  std::unique_ptr<Listener> listener_;
  std::unordered_map<int, std::unique_ptr<PollReg>> polls_;
  std::vector<std::unique_ptr<PollReg>> dead_polls_;
  std::unordered_map<UringStream*, std::unique_ptr<UringStream>> streams_;
  std::vector<std::unique_ptr<UringStream>> closing_;
};

}  // namespace

Result<std::unique_ptr<EventLoop>> CreateUringLoop() {
  return UringLoop::Create();
}

}  // namespace xpv::xenstore
