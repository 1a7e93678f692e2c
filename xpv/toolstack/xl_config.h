// Domain configuration files in xl.cfg syntax (Xen's docs/man/xl.cfg.5.pod.in), the input of
// `xpv create FILE.cfg`.
//
// Two layers:
//  - ParseXlConfig reads xl's grammar (libxlu_cfg_y.y / libxlu_cfg_l.l) into a map of typed values:
//      # comment
//      name = "web"; memory = 512          KEY = VALUE, separated by newlines or ";"
//      kernel = '/usr/lib/xpv/guest'       "double" or 'single' quoted strings
//      disk = [ 'xvda.img,,xvda',          lists, which may span lines and end with a comma
//               'xvdb.img,,xvdb', ]
//  - ParseDomainConfig extracts and checks what xpv uses (name, memory, vcpus, kernel and its
//    command line, disk, vif) and keeps every other key as it was written.
//
// Errors are the line to print, "FILE:LINE: what is wrong"; a parse returns a whole config or an
// error, never a part. See docs/xl-config.md for the language and every check.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "xpv/toolstack/config_result.h"
#include "xpv/toolstack/disk_spec.h"
#include "xpv/toolstack/vif_spec.h"

namespace xpv::toolstack {

// One value of a setting: an atom ("string" or number) or a list of values.
struct XlValue {
  enum class Kind { kString, kNumber, kList };

  Kind kind = Kind::kString;
  // kString: the text with quotes and escapes resolved. kNumber: the digits as written ("0x200");
  // the lexer has checked that they read as an integer (ParseXlInteger).
  std::string text;
  std::vector<XlValue> items;  // kList
  int line = 0;                // where the value starts in the file

  static XlValue String(std::string text, int line = 0);
  static XlValue Number(std::string text, int line = 0);
  static XlValue List(std::vector<XlValue> items, int line = 0);

  // Compares what the values are, not where they were written (line is ignored).
  friend bool operator==(const XlValue& a, const XlValue& b) {
    return a.kind == b.kind && a.text == b.text && a.items == b.items;
  }
};

// Settings by key. Keys are unique: a key given twice is an error (xl would take the last one
// silently; a config that says two things is a mistake worth a message).
using XlSettings = std::map<std::string, XlValue, std::less<>>;

// Parses xl.cfg text. `file_name` only labels messages. Text is limited to 1 MiB and lists to 8
// levels of nesting.
ConfigResult<XlSettings> ParseXlConfig(std::string_view file_name, std::string_view text);

// An xl value written back in xl.cfg syntax: "text" (QuoteXlString), 512, [ "a", 1 ].
std::string FormatXlValue(const XlValue& value);

// What `xpv create` needs to build a domain.
//
// The program: `kernel` is what the domain runs: on real Xen the PV kernel image, on xpv's
// simulated hypervisor the executable started as the domain's process. Its arguments come from
// xl's own keys with xl's rules: `cmdline = "..."` if given, else "root=<root> <extra>" from
// `root` and `extra`. Real Xen hands that string to the kernel as it is; the simulated hypervisor
// splits it like a shell would (SplitCommandLine) and passes the words as argv[1..].
struct DomainConfig {
  std::string name;               // required
  uint32_t memory_mib = 128;      // `memory`, in MiB
  uint32_t vcpus = 1;             // `vcpus`
  std::string kernel;             // empty: none given
  std::string ramdisk;            // empty: none
  std::string cmdline;            // the effective command line (see above)
  std::vector<std::string> args;  // SplitCommandLine(cmdline)
  std::vector<DiskSpec> disks;    // `disk`; DEVID is the index
  std::vector<VifSpec> vifs;      // `vif`; DEVID is the index
  XlSettings other;               // every key not listed above, as written

  friend bool operator==(const DomainConfig&, const DomainConfig&) = default;
};

inline constexpr uint32_t kDefaultMemoryMib = 128;
inline constexpr uint32_t kMaxMemoryMib = 1u << 24;  // 16 TiB: a sanity bound
inline constexpr uint32_t kMaxVcpus = 128;           // Xen's HVM_MAX_VCPUS

ConfigResult<DomainConfig> ParseDomainConfig(std::string_view file_name, std::string_view text);

// Reads and parses the file at `path`; messages are labelled with `path` as given.
ConfigResult<DomainConfig> LoadDomainConfig(const std::string& path);

// Writes `config` as xl.cfg text: name, memory, vcpus, kernel, ramdisk, cmdline, disk, vif, then
// the other keys in name order. ParseDomainConfig(FormatDomainConfig(c)) == c.
std::string FormatDomainConfig(const DomainConfig& config);

// Splits a command line into words as a POSIX shell would, without expansions: blanks separate
// words; '...' is literal; in "..." a backslash escapes only " and \; elsewhere a backslash
// escapes the next character. "a 'b c' d\ e" -> {"a", "b c", "d e"}.
ConfigResult<std::vector<std::string>> SplitCommandLine(std::string_view line);

// Whether `s` is a uuid as xl.cfg's `uuid` key and /vm/<uuid> spell it:
// xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, hexadecimal digits.
bool IsUuid(std::string_view s);

}  // namespace xpv::toolstack
