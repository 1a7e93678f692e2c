// SharedMemory: a memfd and this process's shared mapping of it. Guest RAM, grant tables and the
// event-channel page are all SharedMemory; the hypervisor creates them, domains map what they are
// handed.
#pragma once

#include <cstddef>
#include <cstdint>

#include "xpv/base/result.h"
#include "xpv/base/unique_fd.h"

namespace xpv::platform::sim {

class SharedMemory {
 public:
  SharedMemory() = default;
  SharedMemory(SharedMemory&& other) noexcept;
  SharedMemory& operator=(SharedMemory&& other) noexcept;
  SharedMemory(const SharedMemory&) = delete;
  SharedMemory& operator=(const SharedMemory&) = delete;
  ~SharedMemory();

  // A new sealed memfd of `size` bytes (zeroed), mapped read-write. The size seals
  // (F_SEAL_SHRINK|F_SEAL_GROW) matter: whoever else holds the fd cannot truncate it under a
  // mapping and so cannot make this process take SIGBUS.
  static Result<SharedMemory> Create(const char* name, size_t size);
  // Maps an fd that was handed to us. Fails unless the file holds at least `size` bytes.
  static Result<SharedMemory> Map(UniqueFd fd, size_t size);

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  int fd() const { return fd_.get(); }
  bool valid() const { return data_ != nullptr; }

 private:
  void Reset();
  UniqueFd fd_;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace xpv::platform::sim
