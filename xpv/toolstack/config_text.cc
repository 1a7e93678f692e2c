#include "xpv/toolstack/config_text.h"

#include <fmt/format.h>

#include <algorithm>

#include "xpv/base/types.h"

namespace xpv::toolstack {
namespace {

constexpr size_t kMaxDomainName = 64;
constexpr size_t kMessageQuoteMax = 48;

int DigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return 99;
}

bool IsAsciiAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::optional<uint64_t> ParseXlInteger(std::string_view text) {
  uint64_t base = 10;
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    base = 16;
    text.remove_prefix(2);
  } else if (text.size() > 1 && text[0] == '0') {
    base = 8;
    text.remove_prefix(1);
  }
  if (text.empty()) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    const uint64_t digit = static_cast<uint64_t>(DigitValue(c));
    if (digit >= base) return std::nullopt;
    if (value > (UINT64_MAX - digit) / base) return std::nullopt;
    value = value * base + digit;
  }
  return value;
}

std::string QuoteXlString(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (byte < 0x20 || byte == 0x7f) {
          out += fmt::format("\\x{:02x}", byte);
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

std::string QuoteForMessage(std::string_view text) {
  if (text.size() <= kMessageQuoteMax) return QuoteXlString(text);
  return QuoteXlString(text.substr(0, kMessageQuoteMax)) + "...";
}

ConfigStatus CheckDomainName(std::string_view name) {
  if (name.empty()) return ConfigErr("must not be empty");
  if (name.size() > kMaxDomainName) {
    return ConfigErr(
        fmt::format("{} is longer than {} characters", QuoteForMessage(name), kMaxDomainName));
  }
  for (char c : name) {
    if (!IsAsciiAlnum(c) && c != '_' && c != '-' && c != '.') {
      return ConfigErr(fmt::format("{}: only letters, digits, \"_\", \"-\" and \".\" are allowed",
                                   QuoteForMessage(name)));
    }
  }
  if (!IsAsciiAlnum(name[0]) && name[0] != '_') {
    return ConfigErr(
        fmt::format("{} must start with a letter, a digit or \"_\"", QuoteForMessage(name)));
  }
  if (AllDigits(name)) {
    return ConfigErr(
        fmt::format("{} is all digits, which reads as a domain id", QuoteForMessage(name)));
  }
  return ConfigOk();
}

ConfigStatus CheckDomainRef(std::string_view ref) {
  if (!AllDigits(ref)) return CheckDomainName(ref);
  if (ref.size() > 1 && ref[0] == '0') {
    return ConfigErr(fmt::format("domain id {} has a leading zero", QuoteForMessage(ref)));
  }
  const auto id = ParseXlInteger(ref);
  if (!id || *id >= kDomIdFirstReserved) {
    return ConfigErr(fmt::format("domain id {} is out of range", QuoteForMessage(ref)));
  }
  return ConfigOk();
}

}  // namespace xpv::toolstack
