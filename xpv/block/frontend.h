// BlkFront: a userspace blkif frontend for a simulated guest domain (tests, the benchmark, the
// demo). It plays Linux xen-blkfront's part of the protocol (public/io/blkif.h) against any
// blkif backend, xpv-blkback first.
//
//   XPV_ASSIGN_OR_RETURN(auto front, BlkFront::Connect(platform, ports, store, id, {}));
//   XPV_TRY(front->Write(0, data));                  // synchronous helpers
//   XPV_TRY(front->SubmitRead(tag, offset, buf));    // or asynchronous, with tags
//   front->Wait(completions, 1000);
//   XPV_TRY(front->Close());
//
// Connect: FrontendLink::Open; Initialising; wait for the backend's InitWait (or Connected); read
// its features; choose queues, ring pages, persistent grants, indirect segments and the ring
// layout from FrontOptions; allocate and grant the rings in our own RAM, allocate an unbound event
// channel per queue for the backend, publish everything in one store transaction; Initialised;
// wait for Connected; Connected.
//
// Data: every byte the backend sees is in our own RAM. Writes are copied into granted pages
// before submission, reads out of them after the response. With feature-persistent the pages
// come from a pool granted once (read-write) and reused; otherwise each page is granted for one
// request (read-only for writes) and its access ended after the response. A page whose grant the
// backend still maps (EndAccess: EBUSY) is set aside and retried, never reused meanwhile.
// Requests longer than 11 segments use BLKIF_OP_INDIRECT when agreed (indirect pages granted
// read-only), else they are split; the parts of one operation go to one queue, and operations
// are spread over the queues round-robin.
//
// The backend is not trusted: every response's id must name a request in flight on that queue
// with the operation it was sent with, and the ring's rsp_prod is bounded (FrontRing). A backend
// that breaks either rule breaks the device: from then on every call fails with EPROTO (Close
// still runs the handshake and ends what grants it can). Every wait has a timeout.
//
// Not thread-safe: one thread drives a BlkFront. Its store client must not be shared with other
// watchers (FrontendLink consumes its events). `platform`, `ports` and `store` must outlive it.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "xpv/abi/blkif.h"
#include "xpv/base/result.h"
#include "xpv/block/blkif_front_ring.h"
#include "xpv/platform/platform.h"
#include "xpv/platform/port_dispatcher.h"
#include "xpv/xenbus/frontend.h"
#include "xpv/xenstore/client.h"

namespace xpv::block {

// What the frontend asks for; each is capped by what the backend offers.
struct FrontOptions {
  uint32_t queues = 1;           // multi-queue-num-queues wanted
  uint32_t ring_page_order = 0;  // ring-page-order wanted (log2 of the ring's pages)
  bool persistent = true;        // use feature-persistent when offered
  // Segments per indirect request wanted; 0 (or <= 11) never uses BLKIF_OP_INDIRECT.
  uint32_t max_indirect_segments = 256;
  abi::blkif::Protocol protocol = abi::blkif::Protocol::kX86_64;
  int timeout_ms = 5000;    // each handshake step, and each wait of the synchronous helpers
  size_t max_pages = 8192;  // data + indirect pages this frontend may allocate (4 KiB each)
};

// What was agreed, for the demo to print.
struct Negotiated {
  uint32_t queues = 1;
  uint32_t ring_pages = 1;
  uint32_t ring_entries = 0;  // requests per ring
  bool persistent = false;
  uint32_t indirect_segments = 0;  // 0: no indirect requests
  bool flush = false;
  bool discard = false;
  bool read_only = false;
  uint64_t sectors = 0;  // 512-byte units
  uint32_t sector_size = 512;
  uint32_t physical_sector_size = 512;
  abi::blkif::Protocol protocol = abi::blkif::Protocol::kX86_64;
  std::string info;  // the backend's `info` node, as written

  uint64_t size_bytes() const { return sectors * abi::blkif::kSectorSize; }
};

enum class IoOp : uint8_t { kRead, kWrite, kFlush, kDiscard };

// One finished operation: the tag given at submission and the blkif status (BLKIF_RSP_OKAY, or
// the first non-OK status of its parts).
struct IoCompletion {
  uint64_t tag = 0;
  IoOp op = IoOp::kRead;
  int16_t status = BLKIF_RSP_OKAY;
};

// The one place a blkif status becomes an Error: OKAY is Ok, EOPNOTSUPP is EOPNOTSUPP, anything
// else EIO.
Status StatusFromBlkif(int16_t status);

class BlkFront {
 public:
  static Result<std::unique_ptr<BlkFront>> Connect(platform::Platform& platform,
                                                   platform::PortDispatcher& ports,
                                                   xenstore::Client& store,
                                                   const xenbus::DeviceId& id,
                                                   const FrontOptions& options = {});
  // Close()s if not closed yet.
  ~BlkFront();
  BlkFront(const BlkFront&) = delete;
  BlkFront& operator=(const BlkFront&) = delete;

  const Negotiated& negotiated() const { return negotiated_; }
  const xenbus::FrontendLink& link() const { return link_; }
  // The longest read or write one submission may carry.
  size_t max_io_bytes() const;
  // Operations submitted whose completions have not been taken.
  size_t in_flight() const { return ops_in_flight_; }
  bool broken() const { return broken_; }

  // Asynchronous operations. Offsets and lengths are multiples of sector_size; a read's buffer
  // must stay valid until its completion is taken. Errors, with nothing submitted: EAGAIN when
  // the rings or pages are busy (take completions, then retry); EINVAL for a misaligned or empty
  // range or one longer than max_io_bytes(); EOPNOTSUPP for a flush or discard the backend did
  // not offer; EPROTO once the backend broke the protocol. Range and read-only checks are the
  // backend's: it answers BLKIF_RSP_ERROR.
  Status SubmitRead(uint64_t tag, uint64_t offset, std::span<std::byte> into);
  Status SubmitWrite(uint64_t tag, uint64_t offset, std::span<const std::byte> from);
  Status SubmitFlush(uint64_t tag);
  Status SubmitDiscard(uint64_t tag, uint64_t offset, uint64_t length);

  // Appends finished operations without blocking; returns how many. EPROTO when the backend
  // broke the protocol.
  Result<size_t> Poll(std::vector<IoCompletion>& out);
  // Like Poll, but waits up to `timeout_ms` for at least one completion (ETIMEDOUT).
  Result<size_t> Wait(std::vector<IoCompletion>& out, int timeout_ms);

  // Synchronous helpers: EBUSY while asynchronous operations are in flight; the backend's
  // answer as StatusFromBlkif; ETIMEDOUT when it does not answer within timeout_ms.
  Status Read(uint64_t offset, std::span<std::byte> into);
  Status Write(uint64_t offset, std::span<const std::byte> from);
  Status Flush();
  Status Discard(uint64_t offset, uint64_t length);

  // Closing; waits (bounded) for the backend's Closing or Closed; Closed; then unbinds, ends
  // every grant and frees the pages. Pages whose grant the backend will not give back are leaked
  // rather than reused. Idempotent.
  Status Close();

 private:
  struct Page {
    Gfn gfn;
    GrantRef ref;
    bool granted = false;
  };
  enum class PageUse : uint8_t { kReadData, kWriteData, kIndirect };
  struct Shadow {
    bool in_use = false;
    uint32_t op = 0;         // index into ops_
    uint8_t operation = 0;   // what the response must carry
    size_t op_offset = 0;    // where this part's data starts in the operation's buffer
    size_t bytes = 0;        // data bytes of this part
    std::vector<Page> data;  // one per segment
    std::vector<Page> indirect;
  };
  struct Queue {
    std::vector<Page> ring_pages;
    std::unique_ptr<BlkifFrontRing> ring;
    EvtchnPort port;
    bool port_open = false;
    int kick = -1;
    std::vector<Shadow> shadows;
    std::vector<uint32_t> free_shadows;
  };
  struct Op {
    bool in_use = false;
    uint64_t tag = 0;
    IoOp kind = IoOp::kRead;
    std::byte* read_into = nullptr;
    uint32_t parts_left = 0;
    int16_t status = BLKIF_RSP_OKAY;
  };

  BlkFront(platform::Platform& platform, platform::PortDispatcher& ports, xenstore::Client& store,
           xenbus::FrontendLink link, FrontOptions options)
      : platform_(platform),
        ports_(ports),
        store_(store),
        link_(std::move(link)),
        options_(options) {}

  Status Negotiate();
  Status SetUpQueues();
  Status Publish();
  Status WaitForBackendReady();

  // One read or write (data, copied) or a flush/discard (no data) as blkif requests on one queue.
  Status Submit(uint64_t tag, IoOp kind, uint64_t offset, std::span<std::byte> read_into,
                std::span<const std::byte> write_from, uint64_t discard_length);
  Result<Page> AcquirePage(PageUse use);
  void ReleasePage(Page page, PageUse use);
  void RetryRetiring();
  Result<size_t> Drain(Queue& q, std::vector<IoCompletion>& out);
  void CompletePart(Queue& q, uint32_t id, int16_t status, std::vector<IoCompletion>& out);
  Status Break(const Error& e);
  Status RunSync(uint64_t offset, size_t length, IoOp kind, std::span<std::byte> read_into,
                 std::span<const std::byte> write_from);
  Status WaitAll(std::vector<IoCompletion>& out);
  // Ends a grant, retrying (bounded) while the backend still maps it; false if it never let go.
  bool EndAccessBounded(GrantRef ref);
  void Teardown();

  platform::Platform& platform_;
  platform::PortDispatcher& ports_;
  xenstore::Client& store_;
  xenbus::FrontendLink link_;
  FrontOptions options_;
  Negotiated negotiated_;
  bool backend_has_order_ = false;
  bool backend_has_queues_ = false;

  std::vector<Queue> queues_;
  uint32_t next_queue_ = 0;
  std::vector<Op> ops_;
  std::vector<uint32_t> free_ops_;
  size_t ops_in_flight_ = 0;
  std::vector<IoCompletion> ready_;  // completions found while not asked for (sync helpers)

  std::vector<Page> free_plain_;  // ungranted pages (non-persistent mode, and new pages)
  std::vector<Page> free_rw_;     // persistent: granted read-write, for data
  std::vector<Page> free_ro_;     // persistent: granted read-only, for indirect pages
  std::vector<Page> retiring_;    // EndAccess said EBUSY: retried, never reused meanwhile
  size_t pages_allocated_ = 0;

  bool broken_ = false;
  bool closed_ = false;
};

}  // namespace xpv::block
