// seal() and open(): job messages as NIP-44 v2 encrypted, signed events addressed with one "p" tag.
#include <openssl/crypto.h>

#include "core/encoding.hpp"
#include "nostr/nip44.hpp"
#include "protocol/conversation_key_cache.hpp"
#include "protocol/protocol.hpp"

namespace infernet::protocol {
namespace {

// The longest NIP-44 payload a kMaxContentBytes plaintext can produce: version, nonce, a 6-byte length
// prefix, the padded plaintext (kMaxContentBytes is a multiple of its padding chunk, so it pads to itself)
// and the MAC, in base64. decrypt() refuses longer payloads before decoding them.
constexpr size_t kMaxPayloadChars = (1 + 32 + 6 + kMaxContentBytes + 32 + 2) / 3 * 4;

// Wipes a conversation key copy when the scope ends.
class KeyWiper {
 public:
  explicit KeyWiper(nostr::nip44::ConversationKey& key) : key_(key) {}
  KeyWiper(const KeyWiper&) = delete;
  KeyWiper& operator=(const KeyWiper&) = delete;
  ~KeyWiper() { OPENSSL_cleanse(key_.data(), key_.size()); }

 private:
  nostr::nip44::ConversationKey& key_;
};

// Checks that the event carries exactly one "p" tag and that it names `recipient`.
Status check_addressed_to(const nostr::Event& event, const nostr::PublicKey& recipient) {
  const nostr::Tag* p = nullptr;
  for (const nostr::Tag& tag : event.tags) {
    if (tag.empty() || tag[0] != "p") continue;
    if (p != nullptr) return make_error(ErrorCode::kInvalidInput, "p tag: more than one recipient");
    p = &tag;
  }
  if (p == nullptr || p->size() < 2) return make_error(ErrorCode::kInvalidInput, "p tag: missing");
  std::array<uint8_t, 32> to{};
  if (!hex_decode_fixed((*p)[1], to) || to != recipient.bytes()) {
    return make_error(ErrorCode::kInvalidInput, "p tag: not addressed to us");
  }
  return {};
}

}  // namespace

Result<nostr::Event> seal(const JobMessage& m, const nostr::Keypair& sender,
                          const nostr::PublicKey& recipient, int64_t now) {
  if (auto valid = validate(m); !valid) return tl::unexpected(valid.error());
  const std::string content = to_content(m);
  if (content.size() > kMaxContentBytes) {
    return make_error(ErrorCode::kLimitExceeded, "content: " + std::to_string(content.size()) +
                                                     " bytes after JSON escaping; the limit is " +
                                                     std::to_string(kMaxContentBytes));
  }
  nostr::nip44::ConversationKey key = conversation_key_cache().get(sender, recipient);
  KeyWiper wiper(key);
  auto payload = nostr::nip44::encrypt(content, key);
  if (!payload) return tl::unexpected(with_context(payload.error(), "encrypt"));

  nostr::EventDraft draft;
  draft.created_at = now;
  draft.kind = kind_of(m);
  draft.tags.push_back({"p", recipient.hex()});
  draft.content = std::move(*payload);
  return nostr::sign_event(std::move(draft), sender);
}

Result<Opened> open(const nostr::Event& event, const nostr::Keypair& recipient, bool signature_verified) {
  if (!is_job_kind(event.kind)) {
    return make_error(ErrorCode::kInvalidInput,
                      "kind " + std::to_string(event.kind) + " is not a job message");
  }
  if (auto to_us = check_addressed_to(event, recipient.public_key()); !to_us) {
    return tl::unexpected(to_us.error());
  }
  // nostr::verify_event's checks, with its errors, keeping the parsed key it builds: the ECDH needs it, and
  // parsing a key twice would cost about a tenth of an open().
  if (!signature_verified && nostr::compute_id(event) != event.id) {
    return make_error(ErrorCode::kInvalidId, "id does not match the event's contents");
  }
  auto sender = nostr::PublicKey::from_bytes(event.pubkey);
  if (!sender) return tl::unexpected(with_context(sender.error(), "pubkey"));
  if (!signature_verified && !sender->verify(event.id, event.sig)) {
    return make_error(ErrorCode::kInvalidSignature, "signature does not verify");
  }

  nostr::nip44::ConversationKey key = conversation_key_cache().get(recipient, *sender);
  KeyWiper wiper(key);
  auto plaintext = nostr::nip44::decrypt(event.content, key, kMaxPayloadChars);
  if (!plaintext) return tl::unexpected(with_context(plaintext.error(), "content"));
  auto message = from_content(event.kind, *plaintext);
  if (!message) return tl::unexpected(message.error());
  return Opened{std::move(*message), *sender, event.id, event.created_at};
}

}  // namespace infernet::protocol
