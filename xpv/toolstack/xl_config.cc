#include "xpv/toolstack/xl_config.h"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include "xpv/base/unique_fd.h"
#include "xpv/toolstack/config_text.h"

namespace xpv::toolstack {

XlValue XlValue::String(std::string text, int line) {
  return XlValue{Kind::kString, std::move(text), {}, line};
}
XlValue XlValue::Number(std::string text, int line) {
  return XlValue{Kind::kNumber, std::move(text), {}, line};
}
XlValue XlValue::List(std::vector<XlValue> items, int line) {
  return XlValue{Kind::kList, {}, std::move(items), line};
}

namespace {

constexpr size_t kMaxFileBytes = 1 << 20;
constexpr int kMaxListDepth = 8;

bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}
bool IsLower(char c) {
  return c >= 'a' && c <= 'z';
}
bool IsWordChar(char c) {
  return IsLower(c) || IsDigit(c) || (c >= 'A' && c <= 'Z') || c == '_';
}
bool IsPrintable(char c) {
  return c > ' ' && c < 0x7f;
}

// ---------------------------------------------------------------------------------------------
// The xl.cfg grammar (libxlu_cfg_y.y):
//   file       := { [setting] end }           end := NEWLINE | ";"   (the last end is optional)
//   setting    := KEY "=" value
//   value      := STRING | NUMBER | "[" nl* [ value nl* { "," nl* value nl* } [ "," nl* ] ] "]"
// A comment runs from "#" to the end of the line and counts as that NEWLINE.

enum class TokenKind {
  kWord,
  kNumber,
  kString,
  kEquals,
  kComma,
  kOpen,
  kClose,
  kSemicolon,
  kNewline,
  kEnd
};

struct Token {
  TokenKind kind = TokenKind::kEnd;
  std::string text;
  int line = 1;
};

std::string Describe(const Token& token) {
  switch (token.kind) {
    case TokenKind::kWord:
    case TokenKind::kNumber:
      return token.text;
    case TokenKind::kString:
      return QuoteForMessage(token.text);
    case TokenKind::kEquals:
      return "\"=\"";
    case TokenKind::kComma:
      return "\",\"";
    case TokenKind::kOpen:
      return "\"[\"";
    case TokenKind::kClose:
      return "\"]\"";
    case TokenKind::kSemicolon:
      return "\";\"";
    case TokenKind::kNewline:
      return "end of line";
    case TokenKind::kEnd:
      return "end of file";
  }
  return "?";
}

class XlParser {
 public:
  XlParser(std::string_view file, std::string_view text) : file_(file), text_(text) {}

  ConfigResult<XlSettings> Parse() {
    if (text_.size() > kMaxFileBytes) {
      return ConfigErr(fmt::format("{}: larger than {} bytes", file_, kMaxFileBytes));
    }
    XlSettings settings;
    XPV_TRY(Next());
    while (tok_.kind != TokenKind::kEnd) {
      if (tok_.kind == TokenKind::kNewline || tok_.kind == TokenKind::kSemicolon) {
        XPV_TRY(Next());
        continue;
      }
      if (tok_.kind != TokenKind::kWord) {
        return ErrorAt(tok_.line,
                       fmt::format("expected a setting (KEY = VALUE), got {}", Describe(tok_)));
      }
      // libxlu_cfg_l.l: keys are [a-z][_0-9a-z]*.
      const std::string key = tok_.text;
      const int key_line = tok_.line;
      if (!IsLower(key[0]) || key.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != key.npos) {
        return ErrorAt(key_line, fmt::format("invalid key {} (keys are lowercase letters, digits "
                                             "and \"_\", starting with a letter)",
                                             QuoteForMessage(key)));
      }
      XPV_TRY(Next());
      if (tok_.kind != TokenKind::kEquals) {
        return ErrorAt(tok_.line,
                       fmt::format("expected \"=\" after {}, got {}", key, Describe(tok_)));
      }
      XPV_TRY(Next());
      XPV_ASSIGN_OR_RETURN(XlValue value, ParseValue(0));
      if (tok_.kind != TokenKind::kNewline && tok_.kind != TokenKind::kSemicolon &&
          tok_.kind != TokenKind::kEnd) {
        return ErrorAt(tok_.line, fmt::format("expected end of line or \";\" after the value of "
                                              "{}, got {}",
                                              key, Describe(tok_)));
      }
      if (settings.contains(key)) {
        return ErrorAt(key_line, fmt::format("duplicate key {}", QuoteForMessage(key)));
      }
      settings.emplace(key, std::move(value));
    }
    return settings;
  }

 private:
  ConfigError ErrorAt(int line, std::string_view what) const {
    return ConfigErr(fmt::format("{}:{}: {}", file_, line, what));
  }

  ConfigResult<XlValue> ParseValue(int depth) {
    const int line = tok_.line;
    switch (tok_.kind) {
      case TokenKind::kString: {
        XlValue value = XlValue::String(std::move(tok_.text), line);
        XPV_TRY(Next());
        return value;
      }
      case TokenKind::kNumber: {
        XlValue value = XlValue::Number(std::move(tok_.text), line);
        XPV_TRY(Next());
        return value;
      }
      case TokenKind::kOpen:
        break;
      default:
        return ErrorAt(line,
                       fmt::format("expected a value, got {}{}", Describe(tok_),
                                   tok_.kind == TokenKind::kWord ? " (strings need quotes)" : ""));
    }
    if (depth >= kMaxListDepth) {
      return ErrorAt(line, fmt::format("lists nested more than {} deep", kMaxListDepth));
    }
    XlValue list = XlValue::List({}, line);
    XPV_TRY(Next());
    XPV_TRY(SkipNewlines());
    while (tok_.kind != TokenKind::kClose) {
      if (tok_.kind == TokenKind::kEnd) return ErrorAt(line, "unterminated list");
      XPV_ASSIGN_OR_RETURN(XlValue item, ParseValue(depth + 1));
      list.items.push_back(std::move(item));
      XPV_TRY(SkipNewlines());
      if (tok_.kind == TokenKind::kComma) {
        XPV_TRY(Next());
        XPV_TRY(SkipNewlines());
      } else if (tok_.kind == TokenKind::kEnd) {
        return ErrorAt(line, "unterminated list");
      } else if (tok_.kind != TokenKind::kClose) {
        return ErrorAt(tok_.line,
                       fmt::format("expected \",\" or \"]\" in the list, got {}", Describe(tok_)));
      }
    }
    XPV_TRY(Next());
    return list;
  }

  ConfigStatus SkipNewlines() {
    while (tok_.kind == TokenKind::kNewline) XPV_TRY(Next());
    return ConfigOk();
  }

  ConfigStatus Next() {
    for (;;) {
      if (pos_ >= text_.size()) {
        tok_ = Token{TokenKind::kEnd, "", line_};
        return ConfigOk();
      }
      const char c = text_[pos_];
      if (c == ' ' || c == '\t' || c == '\r') {
        ++pos_;
        continue;
      }
      if (c == '#') {
        pos_ = std::min(text_.find('\n', pos_), text_.size());
        continue;
      }
      tok_ = Token{TokenKind::kEnd, "", line_};
      switch (c) {
        case '\n':
          tok_.kind = TokenKind::kNewline;
          ++pos_;
          ++line_;
          return ConfigOk();
        case '=':
          return Punct(TokenKind::kEquals);
        case ',':
          return Punct(TokenKind::kComma);
        case '[':
          return Punct(TokenKind::kOpen);
        case ']':
          return Punct(TokenKind::kClose);
        case ';':
          return Punct(TokenKind::kSemicolon);
        case '"':
        case '\'':
          return LexString(c);
        default:
          break;
      }
      if (IsWordChar(c)) {
        const size_t end = WordEnd(pos_);
        tok_.text = std::string(text_.substr(pos_, end - pos_));
        pos_ = end;
        tok_.kind = IsDigit(c) ? TokenKind::kNumber : TokenKind::kWord;
        // libxlu_cfg_l.l takes [0-9][0-9a-fx]* as a NUMBER and xl reads it with strtol(, 0).
        if (tok_.kind == TokenKind::kNumber && !ParseXlInteger(tok_.text)) {
          return ErrorAt(line_, fmt::format("invalid number {}", QuoteForMessage(tok_.text)));
        }
        return ConfigOk();
      }
      if (c == '+' && text_.substr(pos_).starts_with("+=")) {
        return ErrorAt(line_, "\"+=\" is not supported; give the whole value with \"=\"");
      }
      if (IsPrintable(c)) return ErrorAt(line_, fmt::format("unexpected character \"{}\"", c));
      return ErrorAt(line_, fmt::format("unexpected byte 0x{:02x}", static_cast<unsigned char>(c)));
    }
  }

  size_t WordEnd(size_t from) const {
    while (from < text_.size() && IsWordChar(text_[from])) ++from;
    return from;
  }

  ConfigStatus Punct(TokenKind kind) {
    tok_.kind = kind;
    ++pos_;
    return ConfigOk();
  }

  // A quoted string on one line. Escapes as libxlu_cfg.c's dequote: \" \' \\ \a \b \f \n \r \t
  // \v, \xHH and \ooo (1 to 3 octal digits). Strings never hold a NUL byte: every string xpv
  // takes from a config ends up as a C string somewhere (a path, an argv word, a xenstore value).
  ConfigStatus LexString(char quote) {
    const int line = line_;
    std::string out;
    ++pos_;
    for (;;) {
      if (pos_ >= text_.size() || text_[pos_] == '\n') return ErrorAt(line, "unterminated string");
      const char c = text_[pos_++];
      if (c == quote) break;
      if (c == '\0') return ErrorAt(line, "NUL byte in string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= text_.size() || text_[pos_] == '\n') return ErrorAt(line, "unterminated string");
      const char e = text_[pos_++];
      switch (e) {
        case '"':
        case '\'':
        case '\\':
          out += e;
          continue;
        case 'a':
          out += '\a';
          continue;
        case 'b':
          out += '\b';
          continue;
        case 'f':
          out += '\f';
          continue;
        case 'n':
          out += '\n';
          continue;
        case 'r':
          out += '\r';
          continue;
        case 't':
          out += '\t';
          continue;
        case 'v':
          out += '\v';
          continue;
        default:
          break;
      }
      unsigned value = 0;
      if (e == 'x') {
        const std::string_view digits = text_.substr(pos_, 2);
        const auto parsed =
            digits.size() == 2 ? ParseXlInteger(fmt::format("0x{}", digits)) : std::nullopt;
        if (!parsed) return ErrorAt(line, "\\x in a string needs two hex digits");
        value = static_cast<unsigned>(*parsed);
        pos_ += 2;
      } else if (e >= '0' && e <= '7') {
        value = static_cast<unsigned>(e - '0');
        for (int n = 1; n < 3 && pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '7';
             ++n) {
          value = value * 8 + static_cast<unsigned>(text_[pos_++] - '0');
        }
        if (value > 0xff) return ErrorAt(line, "octal escape in a string is above \\377");
      } else if (IsPrintable(e)) {
        return ErrorAt(line, fmt::format("invalid escape \"\\{}\" in string", e));
      } else {
        return ErrorAt(line, "invalid escape in string");
      }
      if (value == 0) return ErrorAt(line, "NUL byte in string");
      out += static_cast<char>(value);
    }
    tok_.kind = TokenKind::kString;
    tok_.text = std::move(out);
    return ConfigOk();
  }

  std::string_view file_;
  std::string_view text_;
  size_t pos_ = 0;
  int line_ = 1;
  Token tok_;
};

// ---------------------------------------------------------------------------------------------
// From settings to a DomainConfig.

std::string DescribeValue(const XlValue& value) {
  switch (value.kind) {
    case XlValue::Kind::kString:
      return QuoteForMessage(value.text);
    case XlValue::Kind::kNumber:
      return value.text;
    case XlValue::Kind::kList:
      return "a list";
  }
  return "?";
}

// A setting taken out of the map, with its key for messages.
struct Taken {
  std::string key;
  XlValue value;
};

class DomainExtractor {
 public:
  DomainExtractor(std::string_view file, XlSettings settings)
      : file_(file), settings_(std::move(settings)) {}

  ConfigResult<DomainConfig> Extract() {
    DomainConfig config;
    const std::optional<Taken> name = Take("name");
    if (!name) return ConfigErr(fmt::format("{}: missing required key \"name\"", file_));
    XPV_ASSIGN_OR_RETURN(config.name, String(*name));
    XPV_TRY(Check(*name, CheckDomainName(config.name)));

    XPV_ASSIGN_OR_RETURN(config.memory_mib,
                         CountOr(Take("memory"), kMaxMemoryMib, " MiB", kDefaultMemoryMib));
    XPV_ASSIGN_OR_RETURN(config.vcpus, CountOr(Take("vcpus"), kMaxVcpus, "", 1));
    XPV_TRY(ExtractProgram(config));
    XPV_TRY(ExtractDisks(config));
    XPV_TRY(ExtractVifs(config));
    config.other = std::move(settings_);
    return config;
  }

 private:
  std::optional<Taken> Take(std::string_view key) {
    auto it = settings_.find(key);
    if (it == settings_.end()) return std::nullopt;
    auto node = settings_.extract(it);
    return Taken{std::move(node.key()), std::move(node.mapped())};
  }

  // "FILE:LINE: KEY: what".
  ConfigError At(const Taken& setting, std::string_view what) const {
    return AtValue(setting.value, setting.key, what);
  }
  ConfigError AtValue(const XlValue& value, std::string_view label, std::string_view what) const {
    return ConfigErr(fmt::format("{}:{}: {}: {}", file_, value.line, label, what));
  }
  ConfigStatus Check(const Taken& setting, const ConfigStatus& status) const {
    if (!status) return At(setting, status.error().message);
    return ConfigOk();
  }

  ConfigResult<std::string> String(const Taken& setting) const {
    if (setting.value.kind != XlValue::Kind::kString) {
      return At(setting, fmt::format("expected a string, got {}", DescribeValue(setting.value)));
    }
    return setting.value.text;
  }

  // A number, or a string holding one: xl reads both with strtol.
  ConfigResult<uint64_t> Number(const Taken& setting) const {
    std::optional<uint64_t> number;
    if (setting.value.kind != XlValue::Kind::kList) number = ParseXlInteger(setting.value.text);
    if (!number) {
      return At(setting, fmt::format("expected a number, got {}", DescribeValue(setting.value)));
    }
    return *number;
  }

  // An optional count in [1, max], `fallback` when absent; `unit` follows numbers in messages.
  ConfigResult<uint32_t> CountOr(const std::optional<Taken>& setting, uint32_t max,
                                 std::string_view unit, uint32_t fallback) const {
    if (!setting) return fallback;
    XPV_ASSIGN_OR_RETURN(const uint64_t n, Number(*setting));
    if (n < 1) return At(*setting, fmt::format("must be at least 1, got {}", n));
    if (n > max) return At(*setting, fmt::format("{}{} is more than {}{}", n, unit, max, unit));
    return static_cast<uint32_t>(n);
  }

  enum class Empty { kAllowed, kRefused };

  // An optional string, "" when absent.
  ConfigResult<std::string> StringOr(const std::optional<Taken>& setting, Empty empty) const {
    if (!setting) return std::string();
    XPV_ASSIGN_OR_RETURN(std::string text, String(*setting));
    if (empty == Empty::kRefused && text.empty()) return At(*setting, "must not be empty");
    return text;
  }

  // kernel, ramdisk, and the command line from cmdline, or root and extra (xl.cfg: "When
  // cmdline= is set, root= and extra= will be ignored"; xpv refuses the mix instead).
  ConfigStatus ExtractProgram(DomainConfig& config) {
    XPV_ASSIGN_OR_RETURN(config.kernel, StringOr(Take("kernel"), Empty::kRefused));
    const std::optional<Taken> ramdisk = Take("ramdisk");
    XPV_ASSIGN_OR_RETURN(config.ramdisk, StringOr(ramdisk, Empty::kRefused));
    const std::optional<Taken> cmdline = Take("cmdline");
    const std::optional<Taken> root = Take("root");
    const std::optional<Taken> extra = Take("extra");
    XPV_ASSIGN_OR_RETURN(const std::string cmdline_text, StringOr(cmdline, Empty::kAllowed));
    XPV_ASSIGN_OR_RETURN(const std::string root_text, StringOr(root, Empty::kAllowed));
    XPV_ASSIGN_OR_RETURN(const std::string extra_text, StringOr(extra, Empty::kAllowed));
    if (cmdline) {
      for (const std::optional<Taken>* ignored : {&root, &extra}) {
        if (*ignored) return At(**ignored, "cannot be used with \"cmdline\" (xl would ignore it)");
      }
      config.cmdline = cmdline_text;
    } else if (root) {
      config.cmdline = extra ? fmt::format("root={} {}", root_text, extra_text)
                             : fmt::format("root={}", root_text);
    } else if (extra) {
      config.cmdline = extra_text;
    }
    // libxl honours ramdisk and cmdline only when there is a kernel.
    for (const std::optional<Taken>* part : {&ramdisk, &cmdline, &root, &extra}) {
      if (*part && config.kernel.empty()) return At(**part, "needs \"kernel\"");
    }
    const std::optional<Taken>& source = cmdline ? cmdline : extra ? extra : root;
    if (source) {
      auto args = SplitCommandLine(config.cmdline);
      if (!args) return At(*source, args.error().message);
      config.args = std::move(args).value();
    }
    return ConfigOk();
  }

  // `disk` and `vif` are lists of strings; each entry's messages carry its own line and index.
  ConfigResult<std::vector<XlValue>> StringList(std::optional<Taken> setting) {
    if (!setting) return std::vector<XlValue>{};
    if (setting->value.kind != XlValue::Kind::kList) {
      return At(*setting, fmt::format("expected a list, got {}", DescribeValue(setting->value)));
    }
    for (size_t i = 0; i < setting->value.items.size(); ++i) {
      const XlValue& item = setting->value.items[i];
      if (item.kind != XlValue::Kind::kString) {
        return AtValue(item, fmt::format("{}[{}]", setting->key, i),
                       fmt::format("expected a string, got {}", DescribeValue(item)));
      }
    }
    return std::move(setting->value.items);
  }

  ConfigStatus ExtractDisks(DomainConfig& config) {
    XPV_ASSIGN_OR_RETURN(const std::vector<XlValue> items, StringList(Take("disk")));
    for (size_t i = 0; i < items.size(); ++i) {
      const std::string label = fmt::format("disk[{}]", i);
      auto disk = ParseDiskSpec(items[i].text);
      if (!disk) return AtValue(items[i], label, disk.error().message);
      for (size_t j = 0; j < config.disks.size(); ++j) {
        if (config.disks[j].vdev.number == disk->vdev.number) {
          return AtValue(items[i], label,
                         fmt::format("vdev {} is already used by disk[{}]", disk->vdev.name, j));
        }
      }
      config.disks.push_back(std::move(disk).value());
    }
    return ConfigOk();
  }

  ConfigStatus ExtractVifs(DomainConfig& config) {
    XPV_ASSIGN_OR_RETURN(const std::vector<XlValue> items, StringList(Take("vif")));
    for (size_t i = 0; i < items.size(); ++i) {
      const std::string label = fmt::format("vif[{}]", i);
      auto vif = ParseVifSpec(items[i].text);
      if (!vif) return AtValue(items[i], label, vif.error().message);
      for (size_t j = 0; vif->mac && j < config.vifs.size(); ++j) {
        if (config.vifs[j].mac == vif->mac) {
          return AtValue(items[i], label,
                         fmt::format("mac {} is already used by vif[{}]", ToString(*vif->mac), j));
        }
      }
      config.vifs.push_back(std::move(vif).value());
    }
    return ConfigOk();
  }

  std::string_view file_;
  XlSettings settings_;
};

void AppendStringList(std::string& out, std::string_view key,
                      const std::vector<std::string>& items) {
  if (items.empty()) return;
  out += fmt::format("{} = [\n", key);
  for (const std::string& item : items) out += fmt::format("    {},\n", QuoteXlString(item));
  out += "]\n";
}

}  // namespace

ConfigResult<XlSettings> ParseXlConfig(std::string_view file_name, std::string_view text) {
  return XlParser(file_name, text).Parse();
}

std::string FormatXlValue(const XlValue& value) {
  switch (value.kind) {
    case XlValue::Kind::kString:
      return QuoteXlString(value.text);
    case XlValue::Kind::kNumber:
      return value.text;
    case XlValue::Kind::kList:
      break;
  }
  if (value.items.empty()) return "[]";
  std::string out = "[ ";
  for (size_t i = 0; i < value.items.size(); ++i) {
    if (i > 0) out += ", ";
    out += FormatXlValue(value.items[i]);
  }
  return out + " ]";
}

ConfigResult<DomainConfig> ParseDomainConfig(std::string_view file_name, std::string_view text) {
  XPV_ASSIGN_OR_RETURN(XlSettings settings, ParseXlConfig(file_name, text));
  return DomainExtractor(file_name, std::move(settings)).Extract();
}

ConfigResult<DomainConfig> LoadDomainConfig(const std::string& path) {
  const auto cannot_read = [&path](int err) {
    return ConfigErr(fmt::format("{}: cannot read: {}", path, std::strerror(err)));
  };
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return cannot_read(errno);
  // One byte past the limit is enough for ParseXlConfig to say the file is too large.
  std::string text(kMaxFileBytes + 1, '\0');
  size_t size = 0;
  while (size < text.size()) {
    const ssize_t n = ::read(fd.get(), text.data() + size, text.size() - size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return cannot_read(errno);
    if (n == 0) break;
    size += static_cast<size_t>(n);
  }
  text.resize(size);
  return ParseDomainConfig(path, text);
}

std::string FormatDomainConfig(const DomainConfig& config) {
  std::string out = fmt::format("name = {}\nmemory = {}\nvcpus = {}\n", QuoteXlString(config.name),
                                config.memory_mib, config.vcpus);
  if (!config.kernel.empty()) out += fmt::format("kernel = {}\n", QuoteXlString(config.kernel));
  if (!config.ramdisk.empty()) out += fmt::format("ramdisk = {}\n", QuoteXlString(config.ramdisk));
  if (!config.cmdline.empty()) out += fmt::format("cmdline = {}\n", QuoteXlString(config.cmdline));
  std::vector<std::string> specs;
  for (const DiskSpec& disk : config.disks) specs.push_back(ToString(disk));
  AppendStringList(out, "disk", specs);
  specs.clear();
  for (const VifSpec& vif : config.vifs) specs.push_back(ToString(vif));
  AppendStringList(out, "vif", specs);
  for (const auto& [key, value] : config.other) {
    out += fmt::format("{} = {}\n", key, FormatXlValue(value));
  }
  return out;
}

ConfigResult<std::vector<std::string>> SplitCommandLine(std::string_view line) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
      continue;
    }
    if (c == '\\' && i + 1 < line.size() && line[i + 1] == '\n') {
      ++i;  // a backslash-newline joins lines
      continue;
    }
    in_word = true;
    if (c == '\'') {
      const size_t close = line.find('\'', i + 1);
      if (close == std::string_view::npos) return ConfigErr("unterminated single quote");
      word.append(line.substr(i + 1, close - i - 1));
      i = close;
    } else if (c == '"') {
      for (++i;; ++i) {
        if (i >= line.size()) return ConfigErr("unterminated double quote");
        if (line[i] == '"') break;
        if (line[i] == '\\' && i + 1 < line.size() && (line[i + 1] == '"' || line[i + 1] == '\\')) {
          ++i;
        }
        word += line[i];
      }
    } else if (c == '\\') {
      if (i + 1 >= line.size()) return ConfigErr("ends with a backslash");
      word += line[++i];
    } else {
      word += c;
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

bool IsUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

}  // namespace xpv::toolstack
