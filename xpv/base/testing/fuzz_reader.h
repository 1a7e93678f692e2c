// FuzzReader: a fuzz target's input read a byte or a big-endian word at a time; zeros once it is
// used up, so a target never runs past its input.
#pragma once

#include <cstddef>
#include <cstdint>

namespace xpv::testing {

class FuzzReader {
 public:
  FuzzReader(const uint8_t* data, size_t size) : d_(data), n_(size) {}
  bool done() const { return at_ >= n_; }
  uint8_t u8() { return at_ < n_ ? d_[at_++] : 0; }
  uint32_t u32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | u8();
    return v;
  }

 private:
  const uint8_t* d_;
  size_t n_;
  size_t at_ = 0;
};

}  // namespace xpv::testing
