// "HOST:PORT" as written in the *.listen settings: "127.0.0.1:7447", "[::1]:7448", "0.0.0.0:0".
#pragma once

#include <string>
#include <string_view>

#include "core/result.hpp"
#include "net/server.hpp"

namespace infernet::net {

// Host and port for ServerOptions (the other fields keep their defaults). `key` names the setting in errors:
// kInvalidInput "<key>: no port (expected host:port, ...)", a port over 65535, an empty host, an IPv6 host
// without brackets or with an unclosed '['.
Result<ServerOptions> parse_listen_address(std::string_view key, std::string_view listen);

// The host as it appears in a URL: IPv6 addresses in brackets.
std::string url_host(const std::string& host);

}  // namespace infernet::net
