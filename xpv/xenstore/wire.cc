#include "xpv/xenstore/wire.h"

#include <array>
#include <cstring>

namespace xpv::xenstore {

std::string_view MsgTypeName(uint32_t type) {
  static constexpr std::array<std::string_view, abi::XS_TYPE_COUNT_LATEST> kNames = {
      "CONTROL",
      "DIRECTORY",
      "READ",
      "GET_PERMS",
      "WATCH",
      "UNWATCH",
      "TRANSACTION_START",
      "TRANSACTION_END",
      "INTRODUCE",
      "RELEASE",
      "GET_DOMAIN_PATH",
      "WRITE",
      "MKDIR",
      "RM",
      "SET_PERMS",
      "WATCH_EVENT",
      "ERROR",
      "IS_DOMAIN_INTRODUCED",
      "RESUME",
      "SET_TARGET",
      "RESTRICT",
      "RESET_WATCHES",
      "DIRECTORY_PART",
      "GET_FEATURE",
      "SET_FEATURE",
      "GET_QUOTA",
      "SET_QUOTA"};
  return type < kNames.size() ? kNames[type] : "UNKNOWN";
}

Header DecodeHeader(std::span<const char, kHeaderSize> bytes) {
  // SAFETY: xsd_sockmsg is four uint32_t in host order; memcpy avoids unaligned access.
  xsd_sockmsg raw;
  std::memcpy(&raw, bytes.data(), sizeof(raw));
  return Header{raw.type, raw.req_id, raw.tx_id, raw.len};
}

void EncodeHeader(const Header& header, char* out) {
  xsd_sockmsg raw{header.type, header.req_id, header.tx_id, header.len};
  std::memcpy(out, &raw, sizeof(raw));
}

void AppendMessage(std::string& out, MsgType type, uint32_t req_id, uint32_t tx_id,
                   std::string_view payload) {
  const size_t at = out.size();
  out.resize(at + kHeaderSize);
  EncodeHeader(
      Header{static_cast<uint32_t>(type), req_id, tx_id, static_cast<uint32_t>(payload.size())},
      out.data() + at);
  out.append(payload);
}

Result<size_t> StreamDecoder::Feed(std::string_view data) {
  size_t used = 0;
  while (used < data.size() && !complete_) {
    if (have_ < kHeaderSize) {
      const size_t n = std::min(kHeaderSize - have_, data.size() - used);
      std::memcpy(header_bytes_ + have_, data.data() + used, n);
      have_ += n;
      used += n;
      if (have_ < kHeaderSize) break;
      current_.header = DecodeHeader(std::span<const char, kHeaderSize>(header_bytes_));
      if (current_.header.len > kPayloadMax) {
        return Err(E2BIG, "payload longer than XENSTORE_PAYLOAD_MAX");
      }
      current_.payload.clear();
      current_.payload.reserve(current_.header.len);
    }
    const size_t want = current_.header.len - current_.payload.size();
    const size_t n = std::min(want, data.size() - used);
    current_.payload.append(data.data() + used, n);
    used += n;
    have_ += n;
    if (current_.payload.size() == current_.header.len) complete_ = true;
  }
  return used;
}

Message StreamDecoder::TakeMessage() {
  XPV_CHECK(complete_);
  complete_ = false;
  have_ = 0;
  return std::move(current_);
}

std::vector<std::string_view> SplitStrings(std::string_view payload) {
  std::vector<std::string_view> out;
  size_t off = 0;
  while (off < payload.size()) {
    const size_t nul = payload.find('\0', off);
    if (nul == std::string_view::npos) break;
    out.push_back(payload.substr(off, nul - off));
    off = nul + 1;
  }
  return out;
}

bool OneArg(std::string_view payload, std::string_view* out) {
  if (payload.empty()) return false;
  const size_t nul = payload.find('\0');
  if (nul != payload.size() - 1) return false;
  *out = payload.substr(0, nul);
  return true;
}

namespace {
struct ErrorName {
  int code;
  std::string_view name;
};
// xs_wire.h xsd_errors[], in its order: the first match wins, as in libxenstore.
constexpr ErrorName kErrors[] = {
    {EINVAL, "EINVAL"},       {EACCES, "EACCES"},   {EEXIST, "EEXIST"}, {EISDIR, "EISDIR"},
    {ENOENT, "ENOENT"},       {ENOMEM, "ENOMEM"},   {ENOSPC, "ENOSPC"}, {EIO, "EIO"},
    {ENOTEMPTY, "ENOTEMPTY"}, {ENOSYS, "ENOSYS"},   {EROFS, "EROFS"},   {EBUSY, "EBUSY"},
    {EAGAIN, "EAGAIN"},       {EISCONN, "EISCONN"}, {E2BIG, "E2BIG"},   {EPERM, "EPERM"},
};
}  // namespace

std::string_view ErrorString(int code) {
  for (const auto& e : kErrors) {
    if (e.code == code) return e.name;
  }
  return "EINVAL";
}

int ErrnoFromString(std::string_view s) {
  for (const auto& e : kErrors) {
    if (e.name == s) return e.code;
  }
  return EINVAL;
}

}  // namespace xpv::xenstore
