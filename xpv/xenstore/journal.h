// Persistence for --state-dir: an append-only journal of committed changes plus a snapshot.
//
// Every change is appended to an in-memory batch as the engine makes it; the server writes the
// batch with one write(2) before any reply of that loop iteration leaves (group commit). So a
// write that was acknowledged is in the kernel's page cache, and survives kill -9 of the daemon;
// with `--fsync` each batch is also fdatasync'd, for power loss. When the journal outgrows the
// live tree it is compacted into a new snapshot (written aside, fsync'd, renamed).
//
// Record: u32 length, u32 crc32c-style checksum of the body, body. A torn or corrupt tail record
// (never acknowledged) is dropped on load.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "xpv/base/result.h"
#include "xpv/base/unique_fd.h"
#include "xpv/xenstore/engine.h"

namespace xpv::xenstore {

enum class Durability { kProcessCrash, kPowerLoss };

class Journal {
 public:
  // Opens (creating) `dir`, loads its snapshot and journal into `engine`, and starts recording
  // `engine`'s changes.
  static Result<std::unique_ptr<Journal>> Open(const std::string& dir, Engine& engine,
                                               Durability durability);
  ~Journal();

  // Writes the pending batch. Called by the server before replies are sent.
  Status Flush();
  bool dirty() const { return !batch_.empty(); }

  uint64_t records_loaded() const { return records_loaded_; }

 private:
  Journal(std::string dir, Engine& engine, Durability durability)
      : dir_(std::move(dir)), engine_(engine), durability_(durability) {}
  Status Load();
  Status LoadFile(const std::string& path, bool* torn);
  Status Compact();
  void Append(const Mutation& m);

  std::string dir_;
  Engine& engine_;
  Durability durability_;
  UniqueFd fd_;
  std::string batch_;
  uint64_t journal_bytes_ = 0;
  uint64_t records_loaded_ = 0;
};

}  // namespace xpv::xenstore
