#include "xpv/block/backend_queue.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "xpv/ring/grant_copy_ring_memory.h"

namespace xpv::block {

namespace {

bool OkStatus(platform::GrantStatus s) {
  return s == platform::GrantStatus::kOkay;
}

// A request that moves data from the guest to the disk (its grants may be mapped read-only).
bool ToDisk(const BlockRequest& r) {
  return r.op == BlockOp::kWrite || (r.op == BlockOp::kFlush && !r.segments.empty());
}

}  // namespace

Result<std::unique_ptr<BackendQueue>> BackendQueue::Create(Env env, QueueConfig config) {
  std::unique_ptr<BackendQueue> q(new BackendQueue(env, std::move(config)));
  XPV_TRY(q->Init());
  return q;
}

Status BackendQueue::Init() {
  platform::Platform& plat = env_.platform;
  if (config_.map_grants) {
    std::vector<platform::MapRequest> reqs;
    for (GrantRef ref : config_.ring_refs) reqs.push_back({config_.frontend, ref});
    XPV_ASSIGN_OR_RETURN(ring_mapping_, plat.mapper().Map(reqs));
    std::vector<uint8_t*> pages;
    for (size_t i = 0; i < ring_mapping_->size(); ++i) {
      if (!OkStatus(ring_mapping_->status(i))) return Err(EFAULT, "mapping the ring failed");
      pages.push_back(ring_mapping_->page(i));
    }
    ring_memory_ = std::make_unique<ring::DirectRingMemory>(pages);
  } else {
    XPV_ASSIGN_OR_RETURN(ring_memory_,
                         ring::GrantCopyRingMemory::Create(plat.mapper(), plat.memory(),
                                                           config_.frontend, config_.ring_refs));
  }
  XPV_ASSIGN_OR_RETURN(ring_, BlkifBackRing::Create(*ring_memory_, config_.protocol));
  pending_.resize(ring_->size());
  for (uint32_t i = ring_->size(); i > 0; --i) free_slots_.push_back(i - 1);

  XPV_ASSIGN_OR_RETURN(local_port_,
                       plat.events().BindInterdomain(config_.frontend, config_.remote_port));
  bound_ = true;
  XPV_ASSIGN_OR_RETURN(kick_, env_.ports.Register(local_port_));
  // Binding left the port pending (as in Xen): the first kick comes at once and picks up any
  // requests the frontend queued before we connected.
  return env_.loop.Add(kick_, [this] { OnKick(); });
}

BackendQueue::~BackendQueue() {
  if (kick_ >= 0) {
    env_.loop.Remove(kick_);
    env_.ports.Unregister(local_port_);
  }
  if (bound_) (void)env_.platform.events().Close(local_port_);
  // The owner drained the disk before destroying queues, so no operation still uses these pages.
  for (Pending& p : pending_)
    bounce_free_.insert(bounce_free_.end(), p.bounce.begin(), p.bounce.end());
  for (Gfn gfn : bounce_free_) env_.platform.memory().FreePages(gfn, 1);
}

void BackendQueue::OnKick() {
  platform::PortDispatcher::Clear(kick_);
  Process();
}

size_t BackendQueue::BounceAvailable() const {
  return bounce_free_.size() + (config_.max_bounce_pages - bounce_allocated_);
}

Result<Gfn> BackendQueue::TakeBouncePage() {
  if (bounce_free_.empty()) {
    if (bounce_allocated_ >= config_.max_bounce_pages) return Err(ENOMEM, "bounce pages used up");
    // Grow in chunks; FreePages returns them one by one at the end.
    size_t chunk = std::min<size_t>(32, config_.max_bounce_pages - bounce_allocated_);
    auto first = env_.platform.memory().AllocPages(chunk);
    if (!first) {
      chunk = 1;
      XPV_ASSIGN_OR_RETURN(first, env_.platform.memory().AllocPages(1));
    }
    for (size_t i = chunk; i > 0; --i) bounce_free_.push_back(Gfn(first->value + i - 1));
    bounce_allocated_ += chunk;
  }
  Gfn gfn = bounce_free_.back();
  bounce_free_.pop_back();
  return gfn;
}

void BackendQueue::Process() {
  if (broken_) return;
  const size_t per_request =
      std::max<size_t>(abi::blkif::kMaxDirectSegments, config_.limits.max_indirect_segments) +
      abi::blkif::kMaxIndirectPages;
  bool yielded = false;
  for (int round = 0; round < kBatchesPerWakeup; ++round) {
    size_t budget = std::min(
        {kBatch, free_slots_.size(), size_t{env_.disk.queue_depth() - env_.disk.in_flight()}});
    if (!config_.map_grants) budget = std::min(budget, BounceAvailable() / per_request);
    if (budget == 0) break;  // AfterCompletions comes back when slots free up
    RequestSlot slots[kBatch];
    auto n = ring_->Take(std::span(slots, budget));
    if (!n) return Break(n.error());
    if (*n == 0) {
      auto more = ring_->FinalCheck();
      if (!more) return Break(more.error());
      if (!*more) break;
      continue;
    }
    for (size_t i = 0; i < *n; ++i) {
      const uint32_t slot = free_slots_.back();
      free_slots_.pop_back();
      Start(slot, slots[i]);
    }
    // Writes in copy mode: one grant-copy batch for every request of this ring batch.
    std::vector<uint32_t> failed;
    if (!copy_in_.ops.empty()) failed = RunCopies(copy_in_);
    for (uint32_t slot : starting_) {
      if (std::ranges::find(failed, slot) != failed.end()) {
        Finish(slot, BLKIF_RSP_ERROR);
      } else if (auto st = SubmitIo(slot, false); !st) {
        Finish(slot, BlkifStatus(st.error()));
      }
    }
    starting_.clear();
    (void)env_.disk.Submit();
    yielded = (round == kBatchesPerWakeup - 1) && *n == budget;
  }
  PushResponses();
  if (yielded) {
    // Fairness: other queues and disks run before this ring's next batch.
    const uint64_t one = 1;
    (void)!::write(kick_, &one, sizeof one);
  }
}

void BackendQueue::Start(uint32_t slot, const RequestSlot& bytes) {
  ++stats_.requests;
  Pending& p = pending_[slot];
  auto parsed = ParseRequest(bytes, config_.protocol, config_.limits);
  if (!parsed) {
    const Rejection& r = parsed.error();
    Respond(r.id, r.response_operation, BlkifStatus(r.error));
    free_slots_.push_back(slot);
    return;
  }
  p.req = std::move(*parsed);
  p.stage = Stage::kIo;
  if (p.req.is_indirect()) {
    if (auto st = FetchIndirect(p.req); !st) return Finish(slot, BlkifStatus(st.error()));
  }
  if (auto st = PrepareBuffers(slot); !st) return Finish(slot, BlkifStatus(st.error()));
  starting_.push_back(slot);
}

Status BackendQueue::FetchIndirect(BlockRequest& req) {
  const size_t pages = req.indirect_pages.size();
  std::vector<std::byte> copy(pages * kPageSize);
  platform::Platform& plat = env_.platform;
  if (config_.map_grants) {
    // Indirect pages are persistent grants too when agreed (Linux's blkfront keeps a pool of
    // them): kept mapped read-only, in their own cache, and read afresh for every request.
    std::vector<const uint8_t*> src(pages, nullptr);
    std::vector<platform::MapRequest> reqs;
    std::vector<size_t> index(pages, SIZE_MAX);
    for (size_t i = 0; i < pages; ++i) {
      if (config_.persistent) {
        if (auto it = persistent_indirect_.find(req.indirect_pages[i].value);
            it != persistent_indirect_.end()) {
          src[i] = it->second.mapping->page(it->second.index);
          ++stats_.persistent_hits;
          continue;
        }
      }
      index[i] = reqs.size();
      reqs.push_back({config_.frontend, req.indirect_pages[i], platform::Access::kReadOnly});
    }
    std::shared_ptr<platform::GrantMapping> m;
    if (!reqs.empty()) {
      XPV_ASSIGN_OR_RETURN(m, plat.mapper().Map(reqs));
      stats_.maps += reqs.size();
      const bool keep =
          config_.persistent && persistent_.size() + persistent_indirect_.size() + reqs.size() <=
                                    config_.max_persistent_grants;
      for (size_t i = 0; i < pages; ++i) {
        if (index[i] == SIZE_MAX) continue;
        if (!OkStatus(m->status(index[i]))) return Err(EFAULT, "indirect page grant failed");
        src[i] = m->page(index[i]);
        if (keep)
          persistent_indirect_.try_emplace(req.indirect_pages[i].value, Persistent{m, index[i]});
      }
    }
    // SAFETY: mapped pages of the guest, copied once; only the copy is parsed.
    for (size_t i = 0; i < pages; ++i) std::memcpy(copy.data() + i * kPageSize, src[i], kPageSize);
  } else {
    std::vector<Gfn> local;
    std::vector<platform::CopyOp> ops;
    for (GrantRef ref : req.indirect_pages) {
      auto gfn = TakeBouncePage();
      if (!gfn) break;
      local.push_back(*gfn);
      platform::CopyOp op;
      op.source = {platform::CopyPtr::Kind::kGrant, config_.frontend, ref, Gfn(), 0};
      op.dest = {platform::CopyPtr::Kind::kLocal, DomId(), GrantRef(), *gfn, 0};
      op.len = kPageSize;
      ops.push_back(op);
    }
    Status st = local.size() == pages ? plat.mapper().Copy(ops) : Status(Err(ENOMEM, "bounce"));
    stats_.copies += ops.size();
    for (size_t i = 0; st && i < ops.size(); ++i) {
      if (!OkStatus(ops[i].status)) st = Err(EFAULT, "indirect page grant failed");
    }
    for (size_t i = 0; st && i < local.size(); ++i)
      std::memcpy(copy.data() + i * kPageSize, plat.memory().PageAddress(local[i]), kPageSize);
    bounce_free_.insert(bounce_free_.end(), local.begin(), local.end());
    XPV_TRY(st);
  }
  const size_t used = size_t{req.indirect_segments} * sizeof(blkif_request_segment);
  auto parsed = ParseIndirectSegments(req, std::span(copy).first(used), config_.limits);
  if (!parsed) return parsed.error().error;
  return Ok();
}

Status BackendQueue::PrepareBuffers(uint32_t slot) {
  Pending& p = pending_[slot];
  const std::vector<Segment>& segs = p.req.segments;
  if (segs.empty()) return Ok();
  p.iov.resize(segs.size());
  platform::Platform& plat = env_.platform;

  if (!config_.map_grants) {
    for (size_t i = 0; i < segs.size(); ++i) {
      XPV_ASSIGN_OR_RETURN(Gfn gfn, TakeBouncePage());
      p.bounce.push_back(gfn);
      p.iov[i] = {plat.memory().PageAddress(gfn) + segs[i].offset, segs[i].length};
    }
    if (ToDisk(p.req)) AddSegmentCopies(slot, /*to_guest=*/false, copy_in_);
    return Ok();
  }

  // Map mode: persistent grants first, then one map batch for the rest.
  const platform::Access access = (config_.persistent || !ToDisk(p.req))
                                      ? platform::Access::kReadWrite
                                      : platform::Access::kReadOnly;
  std::vector<uint8_t*> page(segs.size(), nullptr);
  std::vector<platform::MapRequest> to_map;
  std::vector<size_t> map_index(segs.size(), SIZE_MAX);
  for (size_t i = 0; i < segs.size(); ++i) {
    if (config_.persistent) {
      if (auto it = persistent_.find(segs[i].gref.value); it != persistent_.end()) {
        page[i] = it->second.mapping->page(it->second.index);
        ++stats_.persistent_hits;
        continue;
      }
    }
    map_index[i] = to_map.size();
    to_map.push_back({config_.frontend, segs[i].gref, access});
  }
  if (!to_map.empty()) {
    XPV_ASSIGN_OR_RETURN(std::shared_ptr<platform::GrantMapping> m, plat.mapper().Map(to_map));
    stats_.maps += to_map.size();
    for (size_t i = 0; i < segs.size(); ++i) {
      if (map_index[i] == SIZE_MAX) continue;
      if (!OkStatus(m->status(map_index[i]))) return Err(EFAULT, "segment grant failed");
      page[i] = m->page(map_index[i]);
    }
    if (config_.persistent && persistent_.size() + persistent_indirect_.size() + to_map.size() <=
                                  config_.max_persistent_grants) {
      // Keep the new grants mapped for next time: the batch stays mapped while any of its
      // entries is in the cache (until the queue goes).
      for (size_t i = 0; i < segs.size(); ++i) {
        if (map_index[i] != SIZE_MAX)
          persistent_.try_emplace(segs[i].gref.value, Persistent{m, map_index[i]});
      }
    } else {
      p.mapping = std::move(m);  // unmapped when the request finishes
    }
  }
  for (size_t i = 0; i < segs.size(); ++i) p.iov[i] = {page[i] + segs[i].offset, segs[i].length};
  return Ok();
}

void BackendQueue::AddSegmentCopies(uint32_t slot, bool to_guest, CopyBatch& batch) {
  Pending& p = pending_[slot];
  for (size_t i = 0; i < p.req.segments.size(); ++i) {
    const Segment& s = p.req.segments[i];
    platform::CopyPtr guest{platform::CopyPtr::Kind::kGrant, config_.frontend, s.gref, Gfn(),
                            s.offset};
    platform::CopyPtr local{platform::CopyPtr::Kind::kLocal, DomId(), GrantRef(), p.bounce[i],
                            s.offset};
    platform::CopyOp op;
    op.source = to_guest ? local : guest;
    op.dest = to_guest ? guest : local;
    op.len = s.length;
    batch.ops.push_back(op);
    batch.owner.push_back(slot);
  }
}

std::vector<uint32_t> BackendQueue::RunCopies(CopyBatch& batch) {
  std::vector<uint32_t> failed;
  const Status st = env_.platform.mapper().Copy(batch.ops);
  stats_.copies += batch.ops.size();
  for (size_t i = 0; i < batch.ops.size(); ++i) {
    if ((!st || !OkStatus(batch.ops[i].status)) &&
        std::ranges::find(failed, batch.owner[i]) == failed.end())
      failed.push_back(batch.owner[i]);
  }
  batch.Clear();
  return failed;
}

Status BackendQueue::SubmitIo(uint32_t slot, bool after_flush) {
  Pending& p = pending_[slot];
  const uint64_t tag = Tag(config_.index, slot);
  Disk& disk = env_.disk;
  switch (p.req.op) {
    case BlockOp::kRead:
      return disk.Read(tag, p.req.byte_offset(), p.iov);
    case BlockOp::kWrite:
      return disk.Write(tag, p.req.byte_offset(), p.iov);
    case BlockOp::kFlush:
      if (after_flush) return disk.Write(tag, p.req.byte_offset(), p.iov);
      if (!p.req.segments.empty()) p.stage = Stage::kFlushBeforeWrite;
      return disk.Flush(tag);
    case BlockOp::kDiscard:
      return disk.Discard(tag, p.req.byte_offset(), p.req.byte_length());
  }
  return Err(EINVAL, "unknown operation");
}

void BackendQueue::OnCompletion(const DiskCompletion& c) {
  const auto slot = static_cast<uint32_t>(c.tag);
  if (slot >= pending_.size() || pending_[slot].stage == Stage::kFree) return;
  Pending& p = pending_[slot];
  if (c.result < 0) return Finish(slot, BLKIF_RSP_ERROR);
  if (p.stage == Stage::kFlushBeforeWrite) {
    p.stage = Stage::kIo;
    if (auto st = SubmitIo(slot, true); !st) Finish(slot, BlkifStatus(st.error()));
    return;
  }
  if (p.req.op == BlockOp::kRead && !config_.map_grants) {
    finished_reads_.push_back(slot);
    return;
  }
  Finish(slot, BLKIF_RSP_OKAY);
}

void BackendQueue::AfterCompletions() {
  if (!finished_reads_.empty()) {
    for (uint32_t slot : finished_reads_) AddSegmentCopies(slot, /*to_guest=*/true, copy_out_);
    const std::vector<uint32_t> failed = RunCopies(copy_out_);
    for (uint32_t slot : finished_reads_) {
      const bool bad = std::ranges::find(failed, slot) != failed.end();
      Finish(slot, bad ? BLKIF_RSP_ERROR : BLKIF_RSP_OKAY);
    }
    finished_reads_.clear();
  }
  (void)env_.disk.Submit();  // writes that follow a flush
  PushResponses();
  Process();
}

void BackendQueue::Finish(uint32_t slot, int16_t status) {
  Pending& p = pending_[slot];
  Respond(p.req.id, p.req.response_operation, status);
  p.mapping.reset();
  bounce_free_.insert(bounce_free_.end(), p.bounce.begin(), p.bounce.end());
  p.bounce.clear();
  p.iov.clear();
  p.req = BlockRequest{};
  p.stage = Stage::kFree;
  free_slots_.push_back(slot);
}

void BackendQueue::Respond(uint64_t id, uint8_t op, int16_t status) {
  if (status != BLKIF_RSP_OKAY) ++stats_.errors;
  ring_->Put(id, op, status);
  dirty_ = true;
}

void BackendQueue::PushResponses() {
  if (!dirty_ || broken_) return;
  dirty_ = false;
  auto notify = ring_->Push();
  if (!notify) return Break(notify.error());
  if (*notify) {
    ++stats_.notifications;
    (void)env_.platform.events().Notify(local_port_);
  }
}

void BackendQueue::Break(const Error& e) {
  if (broken_) return;
  broken_ = true;
  spdlog::warn("blkback queue {} of domain {}: {} ({})", config_.index, config_.frontend.value,
               e.message, std::strerror(e.code));
  if (env_.on_broken) env_.on_broken(e);
}

}  // namespace xpv::block
