#include "xpv/xenstore/journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <array>
#include <cstring>

namespace xpv::xenstore {

namespace {

constexpr char kSetRecord = 'S';
constexpr char kRemoveRecord = 'R';
constexpr uint64_t kMinCompactBytes = 16u << 20;

uint32_t Crc32c(std::string_view data) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0x82F63B78u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t crc = ~0u;
  for (unsigned char ch : data) crc = table[(crc ^ ch) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

void PutU32(std::string& out, uint32_t v) {
  out.append(reinterpret_cast<const char*>(&v), 4);
}

bool GetU32(std::string_view& in, uint32_t* v) {
  if (in.size() < 4) return false;
  std::memcpy(v, in.data(), 4);
  in.remove_prefix(4);
  return true;
}

bool GetBytes(std::string_view& in, std::string_view* out) {
  uint32_t len = 0;
  if (!GetU32(in, &len) || in.size() < len) return false;
  *out = in.substr(0, len);
  in.remove_prefix(len);
  return true;
}

void PutBytes(std::string& out, std::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out += s;
}

// body: kind, path, [perms, value]
void EncodeRecord(std::string& out, char kind, std::string_view path, const Node* node) {
  std::string body;
  body += kind;
  PutBytes(body, path);
  if (node) {
    PutBytes(body, FormatPerms(*node->perms()));
    PutBytes(body, node->value());
  }
  PutU32(out, static_cast<uint32_t>(body.size()));
  PutU32(out, Crc32c(body));
  out += body;
}

Status WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Err(errno, "journal write");
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Ok();
}

Result<std::string> ReadFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Err(errno, "open");
  std::string out;
  char buf[1 << 16];
  while (true) {
    const ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Err(errno, "read");
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<Journal>> Journal::Open(const std::string& dir, Engine& engine,
                                               Durability durability) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return Err(errno, "mkdir state dir");
  std::unique_ptr<Journal> j(new Journal(dir, engine, durability));
  XPV_TRY(j->Load());
  XPV_TRY(j->Compact());  // start from a fresh snapshot and an empty journal
  Journal* raw = j.get();
  engine.set_mutation_listener([raw](const Mutation& m) { raw->Append(m); });
  return j;
}

Journal::~Journal() {
  engine_.set_mutation_listener(nullptr);
  (void)Flush();
}

Status Journal::LoadFile(const std::string& path, bool* torn) {
  auto data = ReadFile(path);
  if (!data) return data.error().code == ENOENT ? Ok() : Status(data.error());
  std::string_view in = *data;
  while (!in.empty()) {
    std::string_view rec = in;
    uint32_t len = 0;
    uint32_t crc = 0;
    if (!GetU32(rec, &len) || !GetU32(rec, &crc) || rec.size() < len) {
      *torn = true;
      break;
    }
    std::string_view body = rec.substr(0, len);
    if (Crc32c(body) != crc || body.empty()) {
      *torn = true;
      break;
    }
    in = rec.substr(len);
    const char kind = body[0];
    body.remove_prefix(1);
    std::string_view p;
    if (!GetBytes(body, &p)) return Err(EIO, "corrupt journal record");
    if (kind == kRemoveRecord) {
      if (Node* n = engine_.tree().Find(p); n && n != &engine_.tree().root()) {
        std::string path_copy(p);
        engine_.tree().Remove(n, path_copy, [](std::string_view, const Node&) {});
      }
    } else if (kind == kSetRecord) {
      std::string_view perms_text;
      std::string_view value;
      if (!GetBytes(body, &perms_text) || !GetBytes(body, &value)) {
        return Err(EIO, "corrupt journal record");
      }
      std::vector<std::string_view> parts;
      size_t off = 0;
      while (off < perms_text.size()) {
        size_t nul = perms_text.find('\0', off);
        if (nul == std::string_view::npos) nul = perms_text.size();
        parts.push_back(perms_text.substr(off, nul - off));
        off = nul + 1;
      }
      auto perms = ParsePerms(parts);
      if (!perms || perms->empty()) return Err(EIO, "corrupt permissions in journal");
      engine_.RestoreNode(p, std::string(value), MakePerms(std::move(*perms)));
    } else {
      return Err(EIO, "unknown journal record");
    }
    ++records_loaded_;
  }
  return Ok();
}

Status Journal::Load() {
  bool torn = false;
  XPV_TRY(LoadFile(dir_ + "/snapshot", &torn));
  if (torn) return Err(EIO, "snapshot is corrupt");
  XPV_TRY(LoadFile(dir_ + "/journal", &torn));
  if (torn) spdlog::warn("journal: dropped a torn record at the end (never acknowledged)");
  spdlog::info("state: {} records loaded from {}", records_loaded_, dir_);
  return Ok();
}

Status Journal::Compact() {
  std::string snap;
  engine_.ForEachNode(
      [&](std::string_view path, const Node& n) { EncodeRecord(snap, kSetRecord, path, &n); });
  const std::string tmp = dir_ + "/snapshot.tmp";
  {
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd.valid()) return Err(errno, "open snapshot");
    XPV_TRY(WriteAll(fd.get(), snap));
    if (::fsync(fd.get()) != 0) return Err(errno, "fsync snapshot");
  }
  if (::rename(tmp.c_str(), (dir_ + "/snapshot").c_str()) != 0) return Err(errno, "rename");
  fd_.reset(::open((dir_ + "/journal").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC,
                   0600));
  if (!fd_.valid()) return Err(errno, "open journal");
  UniqueFd dirfd(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dirfd.valid()) ::fsync(dirfd.get());
  journal_bytes_ = 0;
  return Ok();
}

void Journal::Append(const Mutation& m) {
  EncodeRecord(batch_, m.kind == Mutation::Kind::kSet ? kSetRecord : kRemoveRecord, m.path,
               m.kind == Mutation::Kind::kSet ? m.node : nullptr);
}

Status Journal::Flush() {
  if (batch_.empty()) return Ok();
  XPV_TRY(WriteAll(fd_.get(), batch_));
  if (durability_ == Durability::kPowerLoss && ::fdatasync(fd_.get()) != 0) {
    return Err(errno, "fdatasync journal");
  }
  journal_bytes_ += batch_.size();
  batch_.clear();
  // Compact once the journal is both large and well past the size of the live tree.
  const uint64_t live_estimate = static_cast<uint64_t>(engine_.tree().node_count()) * 64;
  if (journal_bytes_ > kMinCompactBytes && journal_bytes_ > 4 * live_estimate) XPV_TRY(Compact());
  return Ok();
}

}  // namespace xpv::xenstore
