// Fuzzes everything that reads an event or filter from the network: arbitrary bytes must either parse into a
// value that survives a serialize/parse round trip with the same id, or be refused with an error. Never a
// crash, a leak or undefined behaviour.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "nostr/event.hpp"
#include "nostr/filter.hpp"

using namespace infernet::nostr;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto event = parse_event(text)) {
    (void)verify_event(*event);
    auto again = parse_event(to_json(*event));
    if (!again || compute_id(*again) != compute_id(*event) || again->tags != event->tags ||
        again->content != event->content) {
      std::abort();  // what we print must read back as the same event
    }
  }
  (void)parse_event_draft(text);
  if (auto filter = parse_filter(text)) {
    auto again = parse_filter(to_json(*filter));
    if (!again || to_json(*again) != to_json(*filter)) std::abort();
  }
  return 0;
}
