#include "xpv/block/blkif_front_ring.h"

#include <algorithm>
#include <cstring>

#include "xpv/ring/front_ring.h"

namespace xpv::block {

namespace {

namespace b = abi::blkif;

// Req/Rsp: the slot types; Ind/Dis: the indirect and discard requests of the same layout.
template <typename Req, typename Rsp, typename Ind, typename Dis>
class Impl final : public BlkifFrontRing {
 public:
  Impl(ring::FrontRing<Req, Rsp> ring, b::Protocol p) : ring_(std::move(ring)), p_(p) {}

  b::Protocol protocol() const override { return p_; }
  uint32_t size() const override { return ring_.size(); }
  uint32_t free_requests() const override { return ring_.free_requests(); }
  uint32_t outstanding() const override { return ring_.req_prod_pvt() - ring_.rsp_cons(); }
  bool broken() const override { return ring_.broken(); }

  void PutSegments(uint8_t operation, uint64_t id, uint64_t sector, uint16_t handle,
                   uint8_t nr_segments, std::span<const blkif_request_segment> segments) override {
    Req r{};
    r.operation = operation;
    r.nr_segments = nr_segments;
    r.handle = handle;
    r.id = id;
    r.sector_number = sector;
    const size_t n = std::min<size_t>(segments.size(), BLKIF_MAX_SEGMENTS_PER_REQUEST);
    std::copy_n(segments.begin(), n, r.seg);
    ring_.PutRequest(r);
  }

  void PutIndirect(uint8_t indirect_op, uint64_t id, uint64_t sector, uint16_t handle,
                   uint16_t nr_segments, std::span<const uint32_t> grefs) override {
    Ind r{};
    r.operation = BLKIF_OP_INDIRECT;
    r.indirect_op = indirect_op;
    r.nr_segments = nr_segments;
    r.id = id;
    r.sector_number = sector;
    r.handle = handle;
    const size_t n = std::min<size_t>(grefs.size(), BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST);
    std::copy_n(grefs.begin(), n, r.indirect_grefs);
    PutRaw(std::as_bytes(std::span(&r, 1)));
  }

  void PutDiscard(uint64_t id, uint64_t sector, uint64_t nr_sectors, uint8_t flag,
                  uint16_t handle) override {
    Dis r{};
    r.operation = BLKIF_OP_DISCARD;
    r.flag = flag;
    r.handle = handle;
    r.id = id;
    r.sector_number = sector;
    r.nr_sectors = nr_sectors;
    PutRaw(std::as_bytes(std::span(&r, 1)));
  }

  void PutRaw(std::span<const std::byte> bytes) override {
    static_assert(sizeof(Ind) <= sizeof(Req) && sizeof(Dis) <= sizeof(Req));
    Req r{};
    // SAFETY: Req is trivially copyable; at most sizeof(Req) bytes are copied into a local.
    std::memcpy(&r, bytes.data(), std::min(bytes.size(), sizeof(Req)));
    ring_.PutRequest(r);
  }

  Result<bool> Push() override { return ring_.PushRequests(); }

  Result<size_t> Take(std::span<BlkifResponse> out) override {
    Rsp batch[32];
    const size_t want = std::min(out.size(), std::size(batch));
    XPV_ASSIGN_OR_RETURN(size_t n, ring_.TakeResponses(std::span(batch, want)));
    for (size_t i = 0; i < n; ++i) out[i] = {batch[i].id, batch[i].operation, batch[i].status};
    return n;
  }

  Result<bool> FinalCheck() override { return ring_.FinalCheckForResponses(); }

 private:
  ring::FrontRing<Req, Rsp> ring_;
  b::Protocol p_;
};

template <typename Req, typename Rsp, typename Ind, typename Dis>
Result<std::unique_ptr<BlkifFrontRing>> Make(std::span<uint8_t* const> pages, b::Protocol p) {
  XPV_ASSIGN_OR_RETURN(auto ring, (ring::FrontRing<Req, Rsp>::Create(pages)));
  return std::unique_ptr<BlkifFrontRing>(new Impl<Req, Rsp, Ind, Dis>(std::move(ring), p));
}

}  // namespace

Result<std::unique_ptr<BlkifFrontRing>> BlkifFrontRing::Create(std::span<uint8_t* const> pages,
                                                               b::Protocol protocol) {
  if (protocol == b::Protocol::kX86_32) {
    return Make<b::x86_32::Request, b::x86_32::Response, b::x86_32::RequestIndirect,
                b::x86_32::RequestDiscard>(pages, protocol);
  }
  return Make<b::x86_64::Request, b::x86_64::Response, b::x86_64::RequestIndirect,
              b::x86_64::RequestDiscard>(pages, protocol);
}

}  // namespace xpv::block
