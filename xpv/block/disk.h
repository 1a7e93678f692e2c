// Disk: asynchronous I/O on a raw image file or a block device through io_uring.
//
// Transport-neutral: blkback and virtio-blk both turn validated requests into calls here. The
// caller queues operations (Read, Write, Flush, Discard), each with its own tag, then sends every
// queued one to the kernel with a single Submit(). Completions are announced on event_fd() (an
// eventfd registered with the ring, for the caller's epoll loop) and collected with Reap().
//
// Contract:
// - Reads and writes complete whole or fail: a short transfer is continued from where it stopped
//   (also how requests with more than IOV_MAX iovecs are split), never reported as partial data.
//   A transfer that stops making progress (end of file: the image shrank) fails with -ENODATA
//   (read) or -EIO (write). An error from the backing store is a completion with -errno.
// - At most queue_depth() operations are queued or in flight; beyond that, the queueing calls
//   return EAGAIN ("queue full"), which is the caller's cue to retry once Reap() freed a slot.
// - The buffers an iovec list points at must stay valid until the operation's completion has
//   been reaped; the iovec array itself is copied.
// - Not thread-safe: one thread queues, submits and reaps. The destructor waits for every
//   operation still in the kernel (their completions are dropped).
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "xpv/base/result.h"
#include "xpv/base/unique_fd.h"
#include "xpv/block/request.h"

struct io_uring;  // liburing

namespace xpv::block {

enum class Caching : uint8_t { kBuffered, kDirect };  // kDirect: O_DIRECT
enum class DiskKind : uint8_t { kFile, kBlockDevice };

struct DiskOptions {
  Access access = Access::kReadWrite;
  Caching caching = Caching::kBuffered;
  unsigned queue_depth = 128;
};

// One finished operation: `result` is the bytes transferred for a read or write (always its full
// length), 0 for a flush or discard, or -errno.
struct DiskCompletion {
  uint64_t tag = 0;
  int64_t result = 0;
};

class Disk {
 public:
  // Opens a regular file or a block device. Errors: the open(2) errno (ENOENT, EACCES, ...),
  // ENOTBLK for anything that is neither, or the io_uring setup's errno.
  static Result<std::unique_ptr<Disk>> Open(const std::string& path, const DiskOptions& options);
  ~Disk();
  Disk(const Disk&) = delete;
  Disk& operator=(const Disk&) = delete;

  DiskKind kind() const { return kind_; }
  Access access() const { return access_; }
  uint64_t size_bytes() const { return size_bytes_; }
  uint64_t sectors() const { return size_bytes_ / 512; }  // 512-byte units, as blkif counts
  // Block devices: BLKSSZGET / BLKPBSZGET. Files: 512 / 4096 (with O_DIRECT the file system may
  // need more alignment than 512; such I/O then fails with -EINVAL).
  uint32_t logical_sector_size() const { return logical_sector_size_; }
  uint32_t physical_sector_size() const { return physical_sector_size_; }

  int event_fd() const { return event_fd_.get(); }
  unsigned queue_depth() const { return static_cast<unsigned>(slots_.size()); }
  unsigned in_flight() const { return queue_depth() - static_cast<unsigned>(free_.size()); }

  // Queue an operation (sent by the next Submit). Errors, with nothing queued: EAGAIN when
  // queue_depth() operations are outstanding; EROFS for a write or discard on a read-only disk;
  // ERANGE for a range outside the disk; EINVAL for an empty read, write or discard.
  Status Read(uint64_t tag, uint64_t offset, std::span<const iovec> iov);
  Status Write(uint64_t tag, uint64_t offset, std::span<const iovec> iov);
  Status Flush(uint64_t tag);  // fdatasync
  // Deallocates the range; it reads back as zeros. fallocate(PUNCH_HOLE | KEEP_SIZE) on both
  // kinds (on a block device the kernel turns it into a write-zeroes/unmap without a slow
  // fallback, or fails with -EOPNOTSUPP).
  Status Discard(uint64_t tag, uint64_t offset, uint64_t length);

  // Sends everything queued with one io_uring_submit. Returns how many went to the kernel.
  Result<unsigned> Submit();

  // Appends the finished operations to `out` without blocking, continuing short transfers (and
  // submitting the continuations). Returns how many it appended.
  size_t Reap(std::vector<DiskCompletion>& out);

  // Blocks until event_fd() is readable or `timeout_ms` passes (ETIMEDOUT). For tests and simple
  // callers; a backend's loop polls event_fd() itself.
  Status Wait(int timeout_ms);

 private:
  enum class OpKind : uint8_t { kRead, kWrite, kFlush, kDiscard };
  struct Slot {
    uint64_t tag = 0;
    OpKind kind = OpKind::kRead;
    uint64_t offset = 0;  // of the next byte to transfer
    uint64_t length = 0;  // discard length
    std::vector<iovec> iov;
    size_t iov_at = 0;  // first iovec not yet transferred (adjusted in place when partly done)
    uint64_t done = 0;
    uint64_t total = 0;
    unsigned retries = 0;
  };

  Disk() = default;
  Status InitRing(unsigned depth);
  Result<uint32_t> TakeSlot();
  Status QueueTransfer(OpKind kind, uint64_t tag, uint64_t offset, std::span<const iovec> iov);
  Status CheckRange(uint64_t offset, uint64_t length) const;
  void Prep(uint32_t index);  // the slot's next SQE
  // Handles one CQE for a slot: true when the operation is finished (result in *result).
  bool Complete(uint32_t index, int32_t res, int64_t* result);
  void Release(uint32_t index);
  bool draining_ = false;  // the destructor: finish on the next completion, never continue

  UniqueFd fd_;
  UniqueFd event_fd_;
  DiskKind kind_ = DiskKind::kFile;
  Access access_ = Access::kReadWrite;
  uint64_t size_bytes_ = 0;
  uint32_t logical_sector_size_ = 512;
  uint32_t physical_sector_size_ = 4096;
  std::unique_ptr<::io_uring> ring_;
  bool ring_ready_ = false;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_;
  unsigned unsubmitted_ = 0;  // SQEs prepared since the last successful submit
};

}  // namespace xpv::block
