// The relay's HTTP side: the NIP-11 information document and Prometheus metrics on the WebSocket port.
#include <boost/json.hpp>

#include "relay/relay.hpp"

namespace infernet::relay {

std::string Relay::information_document() const {
  namespace json = boost::json;
  const RelayLimits& l = options_.limits;
  json::object limitation{
      {"max_message_length", l.max_message_bytes},
      {"max_subscriptions", l.max_subscriptions},
      {"max_filters", l.max_filters},
      {"max_limit", l.max_limit},
      {"default_limit", l.max_limit},
      {"max_subid_length", l.max_subscription_id_length},
      {"max_event_tags", l.max_event_tags},
      {"max_content_length", l.max_message_bytes},
      {"min_pow_difficulty", 0},
      {"auth_required", options_.auth.required},
      {"payment_required", false},
      {"restricted_writes", !options_.auth.allowed_pubkeys.empty() || !options_.auth.write_kinds.empty()},
      {"created_at_upper_limit", l.max_future_seconds},
      {"max_events_per_second", l.max_events_per_second},
  };
  if (l.max_past_seconds > 0) limitation["created_at_lower_limit"] = l.max_past_seconds;
  json::object doc{
      {"name", options_.info.name},
      {"description", options_.info.description},
      {"software", "infernet"},
      {"version", "0.1.0"},
      {"supported_nips", json::array{1, 9, 11, 40, 42, 45}},
      {"limitation", std::move(limitation)},
  };
  if (!options_.info.contact.empty()) doc["contact"] = options_.info.contact;
  if (!options_.info.pubkey.empty()) doc["pubkey"] = options_.info.pubkey;
  if (!options_.auth.read_kinds.empty()) {
    json::array kinds;
    for (uint32_t k : options_.auth.read_kinds)
      kinds.push_back(k);
    doc["auth_read_kinds"] = std::move(kinds);
  }
  return json::serialize(doc);
}

std::string Relay::metrics_text() const {
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help, uint64_t value) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
    out += name;
    out += ' ';
    out += std::to_string(value);
    out += '\n';
  };
  metric("infernet_relay_connections", "gauge", "Open WebSocket connections.", metrics_.connections.load());
  metric("infernet_relay_connections_total", "counter", "WebSocket connections accepted.",
         metrics_.connections_total.load());
  metric("infernet_relay_subscriptions", "gauge", "Open subscriptions.", index_.total_subscriptions());
  metric("infernet_relay_events_received_total", "counter", "EVENT messages received.",
         metrics_.events_received.load());
  metric("infernet_relay_events_stored_total", "counter", "Events durably stored.",
         metrics_.events_stored.load());
  metric("infernet_relay_events_sent_total", "counter", "Events sent to subscribers.",
         metrics_.events_sent.load());
  metric("infernet_relay_slow_consumers_dropped_total", "counter",
         "Messages not delivered because a subscriber's outbound queue was full (it is disconnected).",
         metrics_.slow_consumers_dropped.load());
  out += "# HELP infernet_relay_rejected_total Messages refused, by the reason's machine-readable prefix.\n";
  out += "# TYPE infernet_relay_rejected_total counter\n";
  std::lock_guard lock(metrics_.mu);
  for (const auto& [reason, count] : metrics_.rejected) {
    out += "infernet_relay_rejected_total{reason=\"" + reason + "\"} " + std::to_string(count) + "\n";
  }
  return out;
}

net::HttpResponse Relay::handle_http(const net::HttpRequest& request) {
  net::HttpResponse r;
  // NIP-11 asks relays to allow any origin, so browser clients can read the document.
  r.headers.emplace_back("Access-Control-Allow-Origin", "*");
  r.headers.emplace_back("Access-Control-Allow-Headers", "*");
  r.headers.emplace_back("Access-Control-Allow-Methods", "GET, OPTIONS");
  if (request.method == "OPTIONS") {
    r.status = 204;
    return r;
  }
  if (request.method != "GET" && request.method != "HEAD") {
    r.status = 405;
    r.body = "method not allowed\n";
    return r;
  }
  std::string_view path = request.path();
  if (path == "/metrics") {
    r.content_type = "text/plain; version=0.0.4";
    r.body = metrics_text();
    return r;
  }
  if (path == "/") {
    const std::string* accept = request.header("accept");
    if (accept != nullptr && accept->find("application/nostr+json") != std::string::npos) {
      r.content_type = "application/nostr+json";
      r.body = information_document();
      return r;
    }
    r.body = options_.info.name + ": a Nostr relay. Connect with a Nostr client over WebSocket.\n";
    return r;
  }
  r.status = 404;
  r.body = "not found\n";
  return r;
}

}  // namespace infernet::relay
