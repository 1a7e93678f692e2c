// Pages for ring tests: one aligned allocation, handed out contiguous or scattered (out of order,
// with a guard page after each, filled with a pattern so a stray write shows).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "xpv/base/check.h"
#include "xpv/base/types.h"

namespace xpv::ring::testing {

enum class PageLayout : uint8_t { kContiguous, kScattered };

class TestPages {
 public:
  static constexpr uint8_t kGuardFill = 0xEE;

  explicit TestPages(size_t count, PageLayout layout = PageLayout::kContiguous)
      : count_(count), layout_(layout) {
    total_ = layout == PageLayout::kContiguous ? count : 2 * count;
    base_ = static_cast<uint8_t*>(std::aligned_alloc(kPageSize, total_ * kPageSize));
    XPV_CHECK(base_ != nullptr);
    std::memset(base_, kGuardFill, total_ * kPageSize);
    for (size_t i = 0; i < count; ++i) {
      // Scattered: page i is the (count - 1 - i)th odd page, so pages run backwards with gaps.
      const size_t at = layout == PageLayout::kContiguous ? i : 2 * (count - 1 - i) + 1;
      pages_.push_back(base_ + at * kPageSize);
      std::memset(pages_.back(), 0, kPageSize);
    }
  }
  ~TestPages() { std::free(base_); }
  TestPages(const TestPages&) = delete;
  TestPages& operator=(const TestPages&) = delete;

  std::span<uint8_t* const> pages() const { return pages_; }
  // The ring as one block; only for kContiguous.
  uint8_t* contiguous() const {
    XPV_CHECK(layout_ == PageLayout::kContiguous);
    return base_;
  }
  size_t count() const { return count_; }
  // Copies `len` ring bytes at `offset` out, across pages.
  void ReadAt(size_t offset, void* out, size_t len) const {
    auto* o = static_cast<uint8_t*>(out);
    for (size_t i = 0; i < len; ++i)
      o[i] = pages_[(offset + i) / kPageSize][(offset + i) % kPageSize];
  }
  void WriteAt(size_t offset, const void* in, size_t len) {
    auto* p = static_cast<const uint8_t*>(in);
    for (size_t i = 0; i < len; ++i)
      pages_[(offset + i) / kPageSize][(offset + i) % kPageSize] = p[i];
  }
  uint32_t Index(size_t byte_offset) const {
    uint32_t v;
    ReadAt(byte_offset, &v, 4);
    return v;
  }
  void SetIndex(size_t byte_offset, uint32_t v) { WriteAt(byte_offset, &v, 4); }
  // True if no byte outside the ring pages changed.
  bool GuardsIntact() const {
    if (layout_ == PageLayout::kContiguous) return true;
    for (size_t p = 0; p < total_; p += 2) {
      for (size_t i = 0; i < kPageSize; ++i) {
        if (base_[p * kPageSize + i] != kGuardFill) return false;
      }
    }
    return true;
  }

 private:
  size_t count_;
  size_t total_;
  PageLayout layout_;
  uint8_t* base_ = nullptr;
  std::vector<uint8_t*> pages_;
};

}  // namespace xpv::ring::testing
