// Fuzzes NIP-44 decryption with a fixed conversation key: any payload must be refused or decrypt cleanly, and
// anything that is valid plaintext must round-trip through encrypt and decrypt.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/encoding.hpp"
#include "nostr/nip44.hpp"

using namespace infernet;
using namespace infernet::nostr;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const nip44::ConversationKey key = [] {
    nip44::ConversationKey k{};
    for (size_t i = 0; i < k.size(); ++i)
      k[i] = static_cast<uint8_t>(i * 7 + 1);
    return k;
  }();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)nip44::decrypt(text, key);
  if (size > 0 && size < 4096 && is_valid_utf8(text)) {
    auto payload = nip44::encrypt(text, key);
    if (!payload) std::abort();
    auto plain = nip44::decrypt(*payload, key);
    if (!plain || *plain != text) std::abort();
  }
  return 0;
}
