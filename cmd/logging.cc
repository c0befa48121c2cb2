#include "cmd/logging.h"

#include <spdlog/cfg/env.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace quid {
namespace {

constexpr const char* kLoggerName = "quid";

void Install(std::shared_ptr<spdlog::logger> logger, spdlog::level::level_enum level) {
  logger->set_level(level);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(std::move(logger));
  spdlog::cfg::load_env_levels();
}

}  // namespace

void UseCommandLogging() {
  spdlog::drop(kLoggerName);
  Install(spdlog::stderr_color_mt(kLoggerName), spdlog::level::warn);
}

void UseForegroundLogging() {
  spdlog::drop(kLoggerName);
  Install(spdlog::stderr_color_mt(kLoggerName), spdlog::level::info);
}

Status UseDaemonLogging(const std::string& path) {
  spdlog::drop(kLoggerName);
  try {
    Install(spdlog::basic_logger_mt(kLoggerName, path), spdlog::level::info);
  } catch (const spdlog::spdlog_ex& e) {
    return Status::IoError(std::string("cannot open the log: ") + e.what());
  }
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e [%P] %l: %v");
  return Status::Ok();
}

}  // namespace quid
