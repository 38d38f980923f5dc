#include "core/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace infernet {

Status init_logging(std::string_view level) {
  auto lvl = spdlog::level::from_str(std::string(level));
  if (lvl == spdlog::level::off && level != "off") {
    return make_error(ErrorCode::kInvalidInput, "unknown log level '" + std::string(level) + "'");
  }
  auto logger = spdlog::stderr_color_mt("infernet");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(lvl);
  return {};
}

}  // namespace infernet
