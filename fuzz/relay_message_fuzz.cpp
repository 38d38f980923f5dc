// Fuzzes the relay's message parser, the first code every byte from a client reaches: any input is either a
// well-formed message or a refusal that names the command; never a crash. Parsed subscriptions are also
// pushed through the live index, which must accept and remove them.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "relay/message.hpp"
#include "relay/subscription_index.hpp"

using namespace infernet;
using namespace infernet::relay;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  MessageLimits limits;
  auto message = parse_client_message(text, limits);
  if (!message) {
    if (message.error().error.message.empty()) std::abort();  // a refusal must say why
    return 0;
  }
  if (auto* req = std::get_if<ReqMessage>(&*message)) {
    SubscriptionIndex index;
    index.subscribe(1, req->subscription_id, req->filters);
    if (index.total_subscriptions() != 1 || !index.unsubscribe(1, req->subscription_id)) std::abort();
  }
  return 0;
}
