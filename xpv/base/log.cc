#include "xpv/base/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/syslog_sink.h>

#include <string>

namespace xpv {

void InitLogging(std::string_view program, LogSink sink, std::string_view level) {
  std::string name(program);
  std::shared_ptr<spdlog::logger> logger;
  if (sink == LogSink::kSyslog) {
    logger = spdlog::syslog_logger_mt(name, name, LOG_PID | LOG_NDELAY, LOG_DAEMON);
    logger->set_pattern("%v");
  } else {
    logger = spdlog::stderr_logger_mt(name);
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %n[%P] %l: %v");
  }
  logger->set_level(spdlog::level::from_str(std::string(level)));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace xpv
