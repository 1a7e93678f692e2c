#include "xpv/block/blkif_back_ring.h"

#include <cstring>
#include <vector>

#include "xpv/ring/back_ring.h"

namespace xpv::block {

namespace {

template <typename Req, typename Rsp>
class Impl final : public BlkifBackRing {
 public:
  Impl(ring::BackRing<Req, Rsp> ring, abi::blkif::Protocol p) : ring_(std::move(ring)), p_(p) {}

  abi::blkif::Protocol protocol() const override { return p_; }
  uint32_t size() const override { return ring_.size(); }
  uint32_t outstanding() const override { return ring_.outstanding(); }

  Result<size_t> Take(std::span<RequestSlot> out) override {
    using Slot = typename ring::BackRing<Req, Rsp>::Slot;
    Slot batch[32];
    const size_t want = std::min(out.size(), std::size(batch));
    XPV_ASSIGN_OR_RETURN(size_t n, ring_.TakeRequestSlots(std::span(batch, want)));
    for (size_t i = 0; i < n; ++i) {
      out[i].fill(std::byte{0});
      std::memcpy(out[i].data(), batch[i].bytes.data(), std::min(sizeof(Req), out[i].size()));
    }
    return n;
  }

  void Put(uint64_t id, uint8_t operation, int16_t status) override {
    Rsp rsp{};
    rsp.id = id;
    rsp.operation = operation;
    rsp.status = status;
    ring_.PutResponse(rsp);
  }
  Result<bool> Push() override { return ring_.PushResponses(); }
  Result<bool> FinalCheck() override { return ring_.FinalCheckForRequests(); }

 private:
  ring::BackRing<Req, Rsp> ring_;
  abi::blkif::Protocol p_;
};

template <typename Req, typename Rsp>
Result<std::unique_ptr<BlkifBackRing>> Make(ring::RingMemory& memory, abi::blkif::Protocol p) {
  XPV_ASSIGN_OR_RETURN(auto ring, (ring::BackRing<Req, Rsp>::Create(memory)));
  return std::unique_ptr<BlkifBackRing>(new Impl<Req, Rsp>(std::move(ring), p));
}

}  // namespace

Result<std::unique_ptr<BlkifBackRing>> BlkifBackRing::Create(ring::RingMemory& memory,
                                                             abi::blkif::Protocol protocol) {
  namespace b = abi::blkif;
  if (protocol == b::Protocol::kX86_32)
    return Make<b::x86_32::Request, b::x86_32::Response>(memory, protocol);
  return Make<b::x86_64::Request, b::x86_64::Response>(memory, protocol);
}

}  // namespace xpv::block
