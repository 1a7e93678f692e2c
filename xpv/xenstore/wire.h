// The xenstore wire codec: xsd_sockmsg headers and nul-separated payloads (xs_wire.h,
// docs/misc/xenstore.txt "Wire format"). Knows nothing about the store's semantics.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "xpv/abi/xs_wire.h"
#include "xpv/base/result.h"

namespace xpv::xenstore {

// Message types, numbered as in xs_wire.h (abi/ keeps the raw spellings).
enum class MsgType : uint32_t {
  kControl = XS_CONTROL,
  kDirectory = XS_DIRECTORY,
  kRead = XS_READ,
  kGetPerms = XS_GET_PERMS,
  kWatch = XS_WATCH,
  kUnwatch = XS_UNWATCH,
  kTransactionStart = XS_TRANSACTION_START,
  kTransactionEnd = XS_TRANSACTION_END,
  kIntroduce = XS_INTRODUCE,
  kRelease = XS_RELEASE,
  kGetDomainPath = XS_GET_DOMAIN_PATH,
  kWrite = XS_WRITE,
  kMkdir = XS_MKDIR,
  kRm = XS_RM,
  kSetPerms = XS_SET_PERMS,
  kWatchEvent = XS_WATCH_EVENT,
  kError = XS_ERROR,
  kIsDomainIntroduced = XS_IS_DOMAIN_INTRODUCED,
  kResume = XS_RESUME,
  kSetTarget = XS_SET_TARGET,
  kResetWatches = XS_RESET_WATCHES,
  kDirectoryPart = XS_DIRECTORY_PART,
  kGetFeature = abi::XS_GET_FEATURE,
  kSetFeature = abi::XS_SET_FEATURE,
  kGetQuota = abi::XS_GET_QUOTA,
  kSetQuota = abi::XS_SET_QUOTA,
};

// The name Xen's daemons log for a type ("WRITE"), or "UNKNOWN".
std::string_view MsgTypeName(uint32_t type);

inline constexpr size_t kHeaderSize = sizeof(xsd_sockmsg);
inline constexpr size_t kPayloadMax = XENSTORE_PAYLOAD_MAX;

struct Header {
  uint32_t type = 0;
  uint32_t req_id = 0;
  uint32_t tx_id = 0;
  uint32_t len = 0;
};

struct Message {
  Header header;
  std::string payload;

  MsgType type() const { return static_cast<MsgType>(header.type); }
};

// Decodes a header from exactly kHeaderSize bytes (host byte order, as on the ring and socket).
Header DecodeHeader(std::span<const char, kHeaderSize> bytes);
void EncodeHeader(const Header& header, char* out);

// Appends header + payload to `out`.
void AppendMessage(std::string& out, MsgType type, uint32_t req_id, uint32_t tx_id,
                   std::string_view payload);

// Streaming decoder for a byte stream (socket or ring). Feed bytes; take complete messages.
// A header whose len exceeds kPayloadMax is a protocol violation: Xen drops such a connection.
class StreamDecoder {
 public:
  // Consumes bytes from `data`, returning how many were used. Stops after one complete message
  // (so the caller can apply backpressure between messages) or when `data` is exhausted.
  Result<size_t> Feed(std::string_view data);
  bool HasMessage() const { return complete_; }
  Message TakeMessage();
  // True while part of a message has been read.
  bool MidMessage() const { return have_ > 0 || complete_; }

 private:
  char header_bytes_[kHeaderSize];
  size_t have_ = 0;  // bytes of header+payload received
  Message current_;
  bool complete_ = false;
};

// Splits a payload into its nul-terminated strings, as Xen's get_strings() does: a trailing part
// without a nul is not a string.
std::vector<std::string_view> SplitStrings(std::string_view payload);

// The payload as one string: the whole payload must be exactly one nul-terminated string
// (Xen's onearg()). Returns false otherwise.
bool OneArg(std::string_view payload, std::string_view* out);

// The error string Xen sends for an errno (xsd_errors[] in xs_wire.h); "EINVAL" for unknown codes.
std::string_view ErrorString(int code);
// The errno for a xenstore error string, or EINVAL.
int ErrnoFromString(std::string_view s);

}  // namespace xpv::xenstore
