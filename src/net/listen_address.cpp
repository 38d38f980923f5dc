#include "net/listen_address.hpp"

#include <charconv>

namespace infernet::net {

Result<ServerOptions> parse_listen_address(std::string_view key, std::string_view listen) {
  auto bad = [&](std::string_view problem) {
    return make_error(ErrorCode::kInvalidInput, std::string(key) + ": " + std::string(problem) +
                                                    " (expected host:port, e.g. 127.0.0.1:7448)");
  };
  size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos) return bad("no port");
  std::string_view host = listen.substr(0, colon);
  std::string_view port_text = listen.substr(colon + 1);
  if (!host.empty() && host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return bad("unclosed '[' in the host");
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return bad("an IPv6 host must be in brackets, e.g. [::1]:7448");
  }
  if (host.empty()) return bad("empty host");
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535) {
    return bad("port must be 0-65535");
  }
  ServerOptions options;
  options.host = std::string(host);
  options.port = static_cast<uint16_t>(port);
  return options;
}

std::string url_host(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

}  // namespace infernet::net
