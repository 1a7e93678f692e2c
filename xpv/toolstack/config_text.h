// Text helpers shared by the toolstack's parsers: xl's integer syntax, quoting, and the rule for
// domain names.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "xpv/toolstack/config_result.h"

namespace xpv::toolstack {

// An unsigned integer as xl reads one (strtoul with base 0): decimal, 0x-prefixed hex, or octal
// with a leading 0. No sign, no spaces; nullopt on anything else or on overflow.
std::optional<uint64_t> ParseXlInteger(std::string_view text);

// `text` as an xl.cfg double-quoted string: `\` and `"` escaped, control bytes as \n, \t, \r or
// \xHH; other bytes (UTF-8 included) as they are. ParseXlConfig reads it back to `text`.
std::string QuoteXlString(std::string_view text);

// QuoteXlString of at most the first 48 bytes, "..." after the quotes when cut: for messages.
std::string QuoteForMessage(std::string_view text);

// Domain names, as `name =` sets them: 1 to 64 of [A-Za-z0-9_.-], starting with a letter, digit or
// "_" (so a name can safely name a file: no "." or "..", nothing option-like such as "-x"), and
// not all digits (xl reads an all-digit name as a domain id). The message names the problem
// without the key: "\"a b\": only letters, digits, \"_\", \"-\" and \".\" are allowed".
ConfigStatus CheckDomainName(std::string_view name);

// A reference to another domain, as disk and vif `backend=` take it: a domain name, or a domain
// id below DOMID_FIRST_RESERVED.
ConfigStatus CheckDomainRef(std::string_view ref);

}  // namespace xpv::toolstack
