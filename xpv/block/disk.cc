#include "xpv/block/disk.h"

#include <fcntl.h>
#include <liburing.h>
#include <linux/fs.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <algorithm>
#include <climits>

namespace xpv::block {

namespace {
// Retries of a transfer the kernel answered with EAGAIN or EINTR before it counts as failed.
constexpr unsigned kMaxRetries = 8;
constexpr unsigned kMaxQueueDepth = 4096;
}  // namespace

Result<std::unique_ptr<Disk>> Disk::Open(const std::string& path, const DiskOptions& options) {
  if (options.queue_depth == 0 || options.queue_depth > kMaxQueueDepth) {
    return Err(EINVAL, "queue depth out of range");
  }
  int flags = O_CLOEXEC | (options.access == Access::kReadOnly ? O_RDONLY : O_RDWR);
  if (options.caching == Caching::kDirect) flags |= O_DIRECT;
  UniqueFd fd(::open(path.c_str(), flags));
  if (!fd.valid()) return Err(errno, "cannot open the disk");
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Err(errno, "fstat");

  std::unique_ptr<Disk> disk(new Disk());
  disk->access_ = options.access;
  if (S_ISREG(st.st_mode)) {
    disk->kind_ = DiskKind::kFile;
    disk->size_bytes_ = static_cast<uint64_t>(st.st_size);
  } else if (S_ISBLK(st.st_mode)) {
    disk->kind_ = DiskKind::kBlockDevice;
    uint64_t size = 0;
    int logical = 0;
    unsigned int physical = 0;
    if (::ioctl(fd.get(), BLKGETSIZE64, &size) != 0) return Err(errno, "BLKGETSIZE64");
    if (::ioctl(fd.get(), BLKSSZGET, &logical) != 0) return Err(errno, "BLKSSZGET");
    if (::ioctl(fd.get(), BLKPBSZGET, &physical) != 0) return Err(errno, "BLKPBSZGET");
    disk->size_bytes_ = size;
    disk->logical_sector_size_ = static_cast<uint32_t>(logical);
    disk->physical_sector_size_ = physical;
  } else {
    return Err(ENOTBLK, "not a regular file or a block device");
  }
  disk->fd_ = std::move(fd);
  XPV_TRY(disk->InitRing(options.queue_depth));
  return disk;
}

Status Disk::InitRing(unsigned depth) {
  event_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!event_fd_.valid()) return Err(errno, "eventfd");
  ring_ = std::make_unique<::io_uring>();
  // SUBMIT_ALL (5.18): one failing submission does not hold back the rest of the batch. No
  // COOP_TASKRUN: completions must reach the eventfd while the caller sleeps in epoll.
  io_uring_params params{};
  params.flags = IORING_SETUP_SUBMIT_ALL;
  int rc = io_uring_queue_init_params(depth, ring_.get(), &params);
  if (rc == -EINVAL) {
    params = {};
    rc = io_uring_queue_init_params(depth, ring_.get(), &params);
  }
  if (rc < 0) return Err(-rc, "io_uring_setup");
  ring_ready_ = true;
  if (int r = io_uring_register_eventfd(ring_.get(), event_fd_.get()); r < 0) {
    return Err(-r, "io_uring_register_eventfd");
  }
  slots_.resize(depth);
  free_.reserve(depth);
  for (uint32_t i = depth; i > 0; --i) free_.push_back(i - 1);
  return Ok();
}

Disk::~Disk() {
  if (!ring_ready_) return;
  // Everything the kernel holds may still write into our iovec arrays (and the caller's
  // buffers): wait for each. Prepared SQEs that never reached the kernel are simply dropped.
  draining_ = true;
  (void)io_uring_submit(ring_.get());
  unsigned in_kernel = in_flight() - io_uring_sq_ready(ring_.get());
  while (in_kernel > 0) {
    io_uring_cqe* cqe = nullptr;
    const int rc = io_uring_wait_cqe(ring_.get(), &cqe);
    if (rc == -EINTR) continue;
    if (rc < 0) break;
    io_uring_cqe_seen(ring_.get(), cqe);
    --in_kernel;
  }
  io_uring_queue_exit(ring_.get());
}

Result<uint32_t> Disk::TakeSlot() {
  if (free_.empty()) return Err(EAGAIN, "queue full");
  const uint32_t index = free_.back();
  free_.pop_back();
  return index;
}

void Disk::Release(uint32_t index) {
  slots_[index].iov.clear();
  free_.push_back(index);
}

Status Disk::CheckRange(uint64_t offset, uint64_t length) const {
  uint64_t end = 0;
  if (__builtin_add_overflow(offset, length, &end) || end > size_bytes_) {
    return Err(ERANGE, "range outside the disk");
  }
  return Ok();
}

Status Disk::QueueTransfer(OpKind kind, uint64_t tag, uint64_t offset, std::span<const iovec> iov) {
  if (kind == OpKind::kWrite && access_ == Access::kReadOnly) {
    return Err(EROFS, "write to a read-only disk");
  }
  uint64_t total = 0;
  for (const iovec& v : iov) {
    if (__builtin_add_overflow(total, v.iov_len, &total)) return Err(ERANGE, "length overflows");
  }
  if (total == 0) return Err(EINVAL, "empty transfer");
  XPV_TRY(CheckRange(offset, total));
  XPV_ASSIGN_OR_RETURN(const uint32_t index, TakeSlot());
  Slot& s = slots_[index];
  s.tag = tag;
  s.kind = kind;
  s.offset = offset;
  s.iov.clear();
  for (const iovec& v : iov) {
    if (v.iov_len != 0) s.iov.push_back(v);  // an empty one could read as "no progress"
  }
  s.iov_at = 0;
  s.done = 0;
  s.total = total;
  s.retries = 0;
  Prep(index);
  return Ok();
}

Status Disk::Read(uint64_t tag, uint64_t offset, std::span<const iovec> iov) {
  return QueueTransfer(OpKind::kRead, tag, offset, iov);
}

Status Disk::Write(uint64_t tag, uint64_t offset, std::span<const iovec> iov) {
  return QueueTransfer(OpKind::kWrite, tag, offset, iov);
}

Status Disk::Flush(uint64_t tag) {
  XPV_ASSIGN_OR_RETURN(const uint32_t index, TakeSlot());
  Slot& s = slots_[index];
  s.tag = tag;
  s.kind = OpKind::kFlush;
  s.retries = 0;
  Prep(index);
  return Ok();
}

Status Disk::Discard(uint64_t tag, uint64_t offset, uint64_t length) {
  if (access_ == Access::kReadOnly) return Err(EROFS, "discard on a read-only disk");
  if (length == 0) return Err(EINVAL, "empty discard");
  XPV_TRY(CheckRange(offset, length));
  XPV_ASSIGN_OR_RETURN(const uint32_t index, TakeSlot());
  Slot& s = slots_[index];
  s.tag = tag;
  s.kind = OpKind::kDiscard;
  s.offset = offset;
  s.length = length;
  s.retries = 0;
  Prep(index);
  return Ok();
}

void Disk::Prep(uint32_t index) {
  Slot& s = slots_[index];
  // At most one SQE per slot is ever outstanding and the SQ holds queue_depth() of them.
  io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
  XPV_CHECK(sqe != nullptr);
  const unsigned count = static_cast<unsigned>(std::min<size_t>(s.iov.size() - s.iov_at, IOV_MAX));
  switch (s.kind) {
    case OpKind::kRead:
      io_uring_prep_readv(sqe, fd_.get(), &s.iov[s.iov_at], count, s.offset);
      break;
    case OpKind::kWrite:
      io_uring_prep_writev(sqe, fd_.get(), &s.iov[s.iov_at], count, s.offset);
      break;
    case OpKind::kFlush:
      io_uring_prep_fsync(sqe, fd_.get(), IORING_FSYNC_DATASYNC);
      break;
    case OpKind::kDiscard:
      io_uring_prep_fallocate(sqe, fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                              static_cast<off_t>(s.offset), static_cast<off_t>(s.length));
      break;
  }
  io_uring_sqe_set_data64(sqe, index);
  ++unsubmitted_;
}

Result<unsigned> Disk::Submit() {
  if (unsubmitted_ == 0) return 0u;
  const int rc = io_uring_submit(ring_.get());
  unsubmitted_ = io_uring_sq_ready(ring_.get());
  if (rc < 0) return Err(-rc, "io_uring_submit");  // EAGAIN, EBUSY: retry after reaping
  return static_cast<unsigned>(rc);
}

bool Disk::Complete(uint32_t index, int32_t res, int64_t* result) {
  Slot& s = slots_[index];
  if (res < 0) {
    if ((res == -EAGAIN || res == -EINTR) && s.retries < kMaxRetries && !draining_) {
      ++s.retries;
      Prep(index);
      return false;
    }
    *result = res;
    return true;
  }
  if (s.kind == OpKind::kFlush || s.kind == OpKind::kDiscard) {
    *result = 0;
    return true;
  }
  if (res == 0) {
    // No progress: the file ends before the range the caller checked against (it shrank).
    *result = s.kind == OpKind::kRead ? -ENODATA : -EIO;
    return true;
  }
  uint64_t n = static_cast<uint64_t>(res);
  XPV_CHECK(n <= s.total - s.done);  // the kernel never transfers more than asked
  s.done += n;
  s.offset += n;
  if (s.done == s.total) {
    *result = static_cast<int64_t>(s.total);
    return true;
  }
  if (draining_) {
    *result = -ECANCELED;
    return true;
  }
  // A short transfer (or the end of an IOV_MAX chunk): continue with the rest.
  while (n > 0) {
    iovec& v = s.iov[s.iov_at];
    const size_t take = std::min<uint64_t>(n, v.iov_len);
    v.iov_base = static_cast<char*>(v.iov_base) + take;
    v.iov_len -= take;
    n -= take;
    if (v.iov_len == 0) ++s.iov_at;
  }
  Prep(index);
  return false;
}

size_t Disk::Reap(std::vector<DiskCompletion>& out) {
  uint64_t counter = 0;
  // Clears the eventfd first: a completion posted after this read signals it again.
  (void)::read(event_fd_.get(), &counter, sizeof counter);
  size_t reaped = 0;
  io_uring_cqe* cqe = nullptr;
  while (io_uring_peek_cqe(ring_.get(), &cqe) == 0) {
    const auto index = static_cast<uint32_t>(cqe->user_data);
    const int32_t res = cqe->res;
    io_uring_cqe_seen(ring_.get(), cqe);
    XPV_CHECK(index < slots_.size());
    int64_t result = 0;
    if (!Complete(index, res, &result)) continue;
    out.push_back(DiskCompletion{slots_[index].tag, result});
    Release(index);
    ++reaped;
  }
  // Continuations go out now; if the kernel refuses for the moment, the next Submit sends them.
  (void)Submit();
  return reaped;
}

Status Disk::Wait(int timeout_ms) {
  pollfd p{event_fd_.get(), POLLIN, 0};
  for (;;) {
    const int rc = ::poll(&p, 1, timeout_ms);
    if (rc > 0) return Ok();
    if (rc == 0) return Err(ETIMEDOUT, "no completion");
    if (errno != EINTR) return Err(errno, "poll");
  }
}

}  // namespace xpv::block
