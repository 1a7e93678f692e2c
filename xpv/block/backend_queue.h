// One blkif ring of a connected virtual disk: the backend's data path.
//
// A BackendQueue consumes requests from its ring (copied once, parsed into BlockRequests),
// reaches the guest's data pages the way the platform allows, drives the Disk, and answers:
//
//   map mode   segment grants are mapped (GrantMapper::Map) and the disk reads and writes the
//              guest's pages directly. With feature-persistent, a grant stays mapped after its
//              first use, up to `max_persistent_grants` per queue (Linux blkback's 1056), so a
//              steady workload maps nothing.
//   copy mode  nothing of the guest is ever mapped: data moves between the guest's grants and
//              bounce pages of our own RAM by GrantMapper::Copy, one batch per ring batch
//              (writes) or per round of completions (reads).
//
// Everything the guest controls is a value checked before use (request.h); a request that fails
// any check, or whose grants fail, is answered BLKIF_RSP_ERROR (or EOPNOTSUPP). A ring whose
// indices lie breaks the queue: broken() turns true and the owner disconnects the device. A
// queue never takes more requests than it has response slots, disk slots and bounce pages, and
// takes at most kBatchesPerWakeup batches before yielding to the other queues.
#pragma once

#include <sys/uio.h>

#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "xpv/base/event_loop.h"
#include "xpv/base/result.h"
#include "xpv/block/blkif_back_ring.h"
#include "xpv/block/disk.h"
#include "xpv/block/request.h"
#include "xpv/platform/platform.h"
#include "xpv/platform/port_dispatcher.h"
#include "xpv/ring/ring_memory.h"

namespace xpv::block {

struct QueueConfig {
  uint32_t index = 0;  // the queue's number: tags its disk operations
  DomId frontend;
  std::vector<GrantRef> ring_refs;  // ring-ref / ring-ref0..N-1
  EvtchnPort remote_port;           // the frontend's event-channel node
  abi::blkif::Protocol protocol = abi::blkif::Protocol::kX86_64;
  bool map_grants = true;   // false: the platform forbids mapping (xpv-hv copy mode)
  bool persistent = false;  // feature-persistent, agreed by both ends
  uint32_t max_persistent_grants = 1056;
  uint32_t max_bounce_pages = 4096;  // copy mode: bounce pages this queue may hold
  RequestLimits limits;
};

// Counters a test or a status command can read.
struct QueueStats {
  uint64_t requests = 0;
  uint64_t errors = 0;  // answered with anything but BLKIF_RSP_OKAY
  uint64_t maps = 0;    // grants mapped (not counting persistent hits)
  uint64_t persistent_hits = 0;
  uint64_t copies = 0;  // grant-copy operations
  uint64_t notifications = 0;
};

class BackendQueue {
 public:
  struct Env {
    platform::Platform& platform;
    platform::PortDispatcher& ports;
    EventLoop& loop;
    Disk& disk;
    // Called once when the ring breaks (the frontend lied about an index, or a grant of the ring
    // failed). Must not destroy the queue: the owner disconnects the device later.
    std::function<void(const Error&)> on_broken;
  };
  static Result<std::unique_ptr<BackendQueue>> Create(Env env, QueueConfig config);
  // Waits (bounded) for this queue's disk operations, then unmaps and unbinds.
  ~BackendQueue();

  // A disk completion whose tag names this queue.
  void OnCompletion(const DiskCompletion& c);
  // After a round of completions: publishes responses, then takes more requests if slots freed.
  void AfterCompletions();

  bool broken() const { return broken_; }
  const QueueStats& stats() const { return stats_; }
  uint32_t index() const { return config_.index; }
  size_t persistent_grants() const { return persistent_.size() + persistent_indirect_.size(); }

  static uint64_t Tag(uint32_t queue, uint32_t slot) { return (uint64_t{queue} << 32) | slot; }
  static uint32_t TagQueue(uint64_t tag) { return static_cast<uint32_t>(tag >> 32); }

 private:
  static constexpr size_t kBatch = 32;
  static constexpr int kBatchesPerWakeup = 4;

  enum class Stage : uint8_t { kFree, kIo, kFlushBeforeWrite };
  struct Pending {
    Stage stage = Stage::kFree;
    BlockRequest req;
    std::shared_ptr<platform::GrantMapping> mapping;  // non-persistent segment mappings
    std::vector<Gfn> bounce;                          // copy mode: one page per segment
    std::vector<iovec> iov;
  };
  struct Persistent {
    std::shared_ptr<platform::GrantMapping> mapping;  // the batch it was mapped in
    size_t index = 0;                                 // its entry in that batch
  };

  BackendQueue(Env env, QueueConfig config) : env_(env), config_(std::move(config)) {}
  Status Init();

  void OnKick();
  // Takes and starts requests while slots allow; false if the ring broke.
  void Process();
  void Start(uint32_t slot, const RequestSlot& bytes);
  Status FetchIndirect(BlockRequest& req);
  Status PrepareBuffers(uint32_t slot);
  Status SubmitIo(uint32_t slot, bool after_flush);
  void Finish(uint32_t slot, int16_t status);
  void Respond(uint64_t id, uint8_t op, int16_t status);
  void PushResponses();
  void Break(const Error& e);

  Result<Gfn> TakeBouncePage();
  size_t BounceAvailable() const;

  Env env_;
  QueueConfig config_;
  int kick_ = -1;
  EvtchnPort local_port_;
  bool bound_ = false;
  std::unique_ptr<platform::GrantMapping> ring_mapping_;
  std::unique_ptr<ring::RingMemory> ring_memory_;
  std::unique_ptr<BlkifBackRing> ring_;

  std::vector<Pending> pending_;  // one per ring slot
  std::vector<uint32_t> free_slots_;
  std::unordered_map<uint32_t, Persistent> persistent_;           // data pages, by grant ref
  std::unordered_map<uint32_t, Persistent> persistent_indirect_;  // indirect pages (read-only)
  std::vector<Gfn> bounce_free_;
  size_t bounce_allocated_ = 0;
  // Grant copies batched across requests: their ops, and the slot each op belongs to.
  struct CopyBatch {
    std::vector<platform::CopyOp> ops;
    std::vector<uint32_t> owner;
    void Clear() {
      ops.clear();
      owner.clear();
    }
  };
  // Runs the batch; every owner slot with a failed op is in the returned list (once).
  std::vector<uint32_t> RunCopies(CopyBatch& batch);
  void AddSegmentCopies(uint32_t slot, bool to_guest, CopyBatch& batch);

  CopyBatch copy_in_;               // writes taken this batch: guest -> bounce
  CopyBatch copy_out_;              // reads finished this round: bounce -> guest
  std::vector<uint32_t> starting_;  // slots parsed this batch, to submit after copy_in_
  std::vector<uint32_t> finished_reads_;

  bool dirty_ = false;  // responses staged, not yet pushed
  bool broken_ = false;
  QueueStats stats_;
};

}  // namespace xpv::block
