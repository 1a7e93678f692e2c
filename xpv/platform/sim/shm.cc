#include "xpv/platform/sim/shm.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <utility>

namespace xpv::platform::sim {

SharedMemory::SharedMemory(SharedMemory&& other) noexcept
    : fd_(std::move(other.fd_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

SharedMemory& SharedMemory::operator=(SharedMemory&& other) noexcept {
  if (this != &other) {
    Reset();
    fd_ = std::move(other.fd_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

SharedMemory::~SharedMemory() {
  Reset();
}

void SharedMemory::Reset() {
  if (data_ != nullptr) ::munmap(data_, size_);
  data_ = nullptr;
  size_ = 0;
  fd_.reset();
}

Result<SharedMemory> SharedMemory::Create(const char* name, size_t size) {
  if (size == 0) return Err(EINVAL, "empty shared memory");
  UniqueFd fd(::memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd.valid()) return Err(errno, "memfd_create");
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) return Err(errno, "ftruncate memfd");
  if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    return Err(errno, "seal memfd");
  }
  return Map(std::move(fd), size);
}

Result<SharedMemory> SharedMemory::Map(UniqueFd fd, size_t size) {
  if (!fd.valid() || size == 0) return Err(EINVAL, "bad shared memory fd");
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Err(errno, "fstat shared memory");
  if (st.st_size < 0 || static_cast<uint64_t>(st.st_size) < size) {
    return Err(EINVAL, "shared memory smaller than announced");
  }
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) return Err(errno, "mmap shared memory");
  SharedMemory m;
  m.fd_ = std::move(fd);
  m.data_ = static_cast<uint8_t*>(p);
  m.size_ = size;
  return m;
}

}  // namespace xpv::platform::sim
