// Logging through spdlog, to stderr so that stdout stays clean for command output (events, keys, payloads).
#pragma once

#include <string_view>

#include <spdlog/spdlog.h>

#include "core/result.hpp"

namespace infernet {

// Sets the global level from a config value (trace, debug, info, warn, error, off). Call once at start-up;
// spdlog itself is thread-safe afterwards.
Status init_logging(std::string_view level);

}  // namespace infernet
