// Logging: spdlog, to stderr by default or to syslog. One line per distinct failure.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace xpv {

enum class LogSink { kStderr, kSyslog };

// Installs the process-wide logger. `level` is one of spdlog's names: trace, debug, info, warn,
// error.
void InitLogging(std::string_view program, LogSink sink, std::string_view level = "info");

}  // namespace xpv
