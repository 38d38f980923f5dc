#include "nostr/nip19.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include <openssl/crypto.h>

#include "core/encoding.hpp"

namespace infernet::nostr::nip19 {

namespace {

constexpr std::string_view kCharset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
constexpr size_t kChecksumWords = 6;
// BIP-173 checksums end at 1; BIP-350 (bech32m) at this constant. Only recognised to word an error better.
constexpr uint32_t kBech32Constant = 1;
constexpr uint32_t kBech32mConstant = 0x2bc830a3;
// BIP-173's minimum: one prefix character, the separator and the six checksum characters.
constexpr size_t kMinEncodedLength = 8;

constexpr uint8_t kTlvSpecial = 0;
constexpr uint8_t kTlvRelay = 1;
constexpr uint8_t kTlvAuthor = 2;
constexpr uint8_t kTlvKind = 3;

// Reverse of kCharset, indexed by lower-case ASCII; -1 for characters outside the alphabet.
constexpr std::array<int8_t, 128> kCharsetRev = [] {
  std::array<int8_t, 128> rev{};
  rev.fill(-1);
  for (size_t i = 0; i < kCharset.size(); ++i)
    rev[static_cast<uint8_t>(kCharset[i])] = static_cast<int8_t>(i);
  return rev;
}();

uint32_t polymod_step(uint32_t pre) {
  static constexpr std::array<uint32_t, 5> kGenerators = {0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd,
                                                          0x2a1462b3};
  const uint32_t top = pre >> 25;
  uint32_t chk = (pre & 0x1ffffff) << 5;
  for (size_t i = 0; i < kGenerators.size(); ++i) {
    if ((top >> i) & 1) chk ^= kGenerators[i];
  }
  return chk;
}

// Checksum state after the expanded prefix (high bits, a zero, low bits), as BIP-173 defines it. `hrp` is
// lower-case printable ASCII.
uint32_t prefix_checksum_state(std::string_view hrp) {
  uint32_t chk = 1;
  for (char c : hrp)
    chk = polymod_step(chk) ^ (static_cast<uint8_t>(c) >> 5);
  chk = polymod_step(chk);
  for (char c : hrp)
    chk = polymod_step(chk) ^ (static_cast<uint8_t>(c) & 0x1f);
  return chk;
}

// 8-bit bytes to 5-bit words, zero-padding the last word.
std::vector<uint8_t> to_words(std::span<const uint8_t> bytes) {
  std::vector<uint8_t> words;
  words.reserve((bytes.size() * 8 + 4) / 5);
  uint32_t acc = 0;
  int bits = 0;
  for (uint8_t b : bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      words.push_back(static_cast<uint8_t>((acc >> bits) & 0x1f));
    }
    acc &= (1u << bits) - 1;  // keep only unconsumed bits so acc never overflows
  }
  if (bits > 0) words.push_back(static_cast<uint8_t>((acc << (5 - bits)) & 0x1f));
  return words;
}

// 5-bit words back to bytes. Refuses what to_words could not have produced (a whole spare word, or non-zero
// padding) so that each byte string has exactly one encoding.
Result<Bytes> from_words(std::span<const uint8_t> words) {
  Bytes out;
  out.reserve(words.size() * 5 / 8);
  uint32_t acc = 0;
  int bits = 0;
  for (uint8_t w : words) {
    acc = (acc << 5) | w;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>((acc >> bits) & 0xff));
    }
    acc &= (1u << bits) - 1;
  }
  if (bits >= 5) {
    OPENSSL_cleanse(out.data(), out.size());
    return make_error(ErrorCode::kInvalidInput, "excess padding: the data part has a spare 5-bit group");
  }
  if (acc != 0) {
    OPENSSL_cleanse(out.data(), out.size());
    return make_error(ErrorCode::kInvalidInput, "non-zero padding bits");
  }
  return out;
}

size_t encoded_length(std::string_view hrp, size_t payload_bytes) {
  return hrp.size() + 1 + (payload_bytes * 8 + 4) / 5 + kChecksumWords;
}

// Largest payload whose encoding under `hrp` stays within kMaxEncodedLength: ceil(8n/5) <= W iff n <= 5W/8.
size_t max_payload_bytes(std::string_view hrp) {
  return (kMaxEncodedLength - hrp.size() - 1 - kChecksumWords) * 5 / 8;
}

// `hrp` is one of our lower-case prefixes; the caller has checked the length limit.
std::string bech32_encode(std::string_view hrp, std::span<const uint8_t> payload, bool secret = false) {
  std::vector<uint8_t> words = to_words(payload);
  uint32_t chk = prefix_checksum_state(hrp);
  for (uint8_t w : words)
    chk = polymod_step(chk) ^ w;
  for (size_t i = 0; i < kChecksumWords; ++i)
    chk = polymod_step(chk);
  chk ^= kBech32Constant;

  std::string out;
  out.reserve(encoded_length(hrp, payload.size()));
  out.append(hrp);
  out.push_back('1');
  for (uint8_t w : words)
    out.push_back(kCharset[w]);
  for (size_t i = 0; i < kChecksumWords; ++i)
    out.push_back(kCharset[(chk >> (5 * (kChecksumWords - 1 - i))) & 0x1f]);
  // The 5-bit form of a secret key is as sensitive as the key; the output string is the caller's to manage.
  if (secret) OPENSSL_cleanse(words.data(), words.size());
  return out;
}

// Builds TLV entities, refusing values a one-byte length cannot describe and payloads that would exceed the
// string length limit. Stops growing as soon as the limit is passed, so a huge relay list costs nothing.
class TlvWriter {
 public:
  explicit TlvWriter(std::string_view hrp) : hrp_(hrp), max_bytes_(max_payload_bytes(hrp)) {}

  Status add(uint8_t type, std::span<const uint8_t> value, std::string_view what) {
    if (value.size() > kMaxTlvValueLength) {
      return make_error(ErrorCode::kLimitExceeded,
                        std::string(hrp_) + ": " + std::string(what) + " is " + std::to_string(value.size()) +
                            " bytes; a TLV value holds at most " + std::to_string(kMaxTlvValueLength));
    }
    if (bytes_.size() + 2 + value.size() > max_bytes_) {
      return make_error(ErrorCode::kLimitExceeded, std::string(hrp_) + ": too long: encoding would exceed " +
                                                       std::to_string(kMaxEncodedLength) + " characters");
    }
    bytes_.push_back(type);
    bytes_.push_back(static_cast<uint8_t>(value.size()));
    bytes_.insert(bytes_.end(), value.begin(), value.end());
    return {};
  }

  // Text values must be UTF-8 so that decode, which insists on it, accepts what we produce.
  Status add_text(uint8_t type, std::string_view text, std::string_view what) {
    if (!is_valid_utf8(text)) {
      return make_error(ErrorCode::kInvalidInput,
                        std::string(hrp_) + ": " + std::string(what) + " is not valid UTF-8");
    }
    return add(type, as_bytes(text), what);
  }

  Status add_relays(const std::vector<std::string>& relays) {
    for (size_t i = 0; i < relays.size(); ++i) {
      if (auto st = add_text(kTlvRelay, relays[i], "relay " + std::to_string(i)); !st) return st;
    }
    return {};
  }

  Status add_kind(uint32_t kind) {
    const std::array<uint8_t, 4> be = {static_cast<uint8_t>(kind >> 24), static_cast<uint8_t>(kind >> 16),
                                       static_cast<uint8_t>(kind >> 8), static_cast<uint8_t>(kind)};
    return add(kTlvKind, be, "kind");
  }

  std::string finish() const { return bech32_encode(hrp_, bytes_); }

 private:
  std::string_view hrp_;
  size_t max_bytes_;
  Bytes bytes_;
};

// Parsed TLV records. Only the first value of types 0, 2 and 3 matters (nostr-tools ignores repeats); every
// relay is kept. Spans point into the decoded payload, which must outlive this.
struct TlvRecords {
  std::optional<std::span<const uint8_t>> special;
  std::optional<std::span<const uint8_t>> author;
  std::optional<std::span<const uint8_t>> kind;
  std::vector<std::span<const uint8_t>> relays;
};

Result<TlvRecords> parse_tlv(std::span<const uint8_t> data) {
  TlvRecords records;
  size_t pos = 0;
  while (pos < data.size()) {
    if (data.size() - pos < 2) {
      return make_error(ErrorCode::kInvalidInput, "TLV truncated: 1 byte left at offset " +
                                                      std::to_string(pos) +
                                                      ", a record needs 2 for type and length");
    }
    const uint8_t type = data[pos];
    const size_t len = data[pos + 1];
    pos += 2;
    if (data.size() - pos < len) {
      return make_error(ErrorCode::kInvalidInput,
                        "TLV truncated: type " + std::to_string(type) + " declares " + std::to_string(len) +
                            " bytes but only " + std::to_string(data.size() - pos) + " remain");
    }
    const std::span<const uint8_t> value = data.subspan(pos, len);
    pos += len;
    switch (type) {
      case kTlvSpecial:
        if (!records.special) records.special = value;
        break;
      case kTlvRelay:
        records.relays.push_back(value);
        break;
      case kTlvAuthor:
        if (!records.author) records.author = value;
        break;
      case kTlvKind:
        if (!records.kind) records.kind = value;
        break;
      default:
        break;  // NIP-19: unknown types are ignored, so newer encoders can add records.
    }
  }
  return records;
}

Result<std::string> utf8_text(std::span<const uint8_t> value, std::string_view hrp, std::string_view what) {
  const std::string_view text = as_chars(value);
  if (!is_valid_utf8(text)) {
    return make_error(ErrorCode::kInvalidInput,
                      std::string(hrp) + ": " + std::string(what) + " is not valid UTF-8");
  }
  return std::string(text);
}

Result<std::vector<std::string>> relay_texts(const TlvRecords& records, std::string_view hrp) {
  std::vector<std::string> relays;
  relays.reserve(records.relays.size());
  for (size_t i = 0; i < records.relays.size(); ++i) {
    auto text = utf8_text(records.relays[i], hrp, "relay " + std::to_string(i) + " (TLV 1)");
    if (!text) return tl::unexpected(std::move(text.error()));
    relays.push_back(std::move(*text));
  }
  return relays;
}

// Copies a 32-byte TLV value; `field` names it in errors, e.g. "pubkey (TLV 0)".
Result<std::array<uint8_t, 32>> required_key(const std::optional<std::span<const uint8_t>>& value,
                                             std::string_view hrp, std::string_view field) {
  if (!value) {
    return make_error(ErrorCode::kInvalidInput, std::string(hrp) + ": missing " + std::string(field));
  }
  if (value->size() != 32) {
    return make_error(ErrorCode::kInvalidInput, std::string(hrp) + ": " + std::string(field) +
                                                    " must be 32 bytes, got " +
                                                    std::to_string(value->size()));
  }
  std::array<uint8_t, 32> out{};
  std::memcpy(out.data(), value->data(), 32);
  return out;
}

Result<uint32_t> kind_value(std::span<const uint8_t> value, std::string_view hrp) {
  if (value.size() != 4) {
    return make_error(ErrorCode::kInvalidInput, std::string(hrp) + ": kind (TLV 3) must be 4 bytes, got " +
                                                    std::to_string(value.size()));
  }
  return (uint32_t{value[0]} << 24) | (uint32_t{value[1]} << 16) | (uint32_t{value[2]} << 8) | value[3];
}

Result<Entity> decode_nprofile(std::span<const uint8_t> payload) {
  constexpr std::string_view kHrp = "nprofile";
  auto records = parse_tlv(payload);
  if (!records) return tl::unexpected(with_context(std::move(records.error()), kHrp));
  ProfilePointer profile{};
  auto pubkey = required_key(records->special, kHrp, "pubkey (TLV 0)");
  if (!pubkey) return tl::unexpected(std::move(pubkey.error()));
  profile.pubkey = *pubkey;
  auto relays = relay_texts(*records, kHrp);
  if (!relays) return tl::unexpected(std::move(relays.error()));
  profile.relays = std::move(*relays);
  return profile;
}

Result<Entity> decode_nevent(std::span<const uint8_t> payload) {
  constexpr std::string_view kHrp = "nevent";
  auto records = parse_tlv(payload);
  if (!records) return tl::unexpected(with_context(std::move(records.error()), kHrp));
  EventPointer event{};
  auto id = required_key(records->special, kHrp, "event id (TLV 0)");
  if (!id) return tl::unexpected(std::move(id.error()));
  event.id = *id;
  if (records->author) {
    auto author = required_key(records->author, kHrp, "author (TLV 2)");
    if (!author) return tl::unexpected(std::move(author.error()));
    event.author = *author;
  }
  if (records->kind) {
    auto kind = kind_value(*records->kind, kHrp);
    if (!kind) return tl::unexpected(std::move(kind.error()));
    event.kind = *kind;
  }
  auto relays = relay_texts(*records, kHrp);
  if (!relays) return tl::unexpected(std::move(relays.error()));
  event.relays = std::move(*relays);
  return event;
}

Result<Entity> decode_naddr(std::span<const uint8_t> payload) {
  constexpr std::string_view kHrp = "naddr";
  auto records = parse_tlv(payload);
  if (!records) return tl::unexpected(with_context(std::move(records.error()), kHrp));
  AddressPointer address{};
  // An empty identifier is legal (replaceable events addressed without a d tag), so only absence is an error.
  if (!records->special) return make_error(ErrorCode::kInvalidInput, "naddr: missing identifier (TLV 0)");
  auto identifier = utf8_text(*records->special, kHrp, "identifier (TLV 0)");
  if (!identifier) return tl::unexpected(std::move(identifier.error()));
  address.identifier = std::move(*identifier);
  auto pubkey = required_key(records->author, kHrp, "author pubkey (TLV 2)");
  if (!pubkey) return tl::unexpected(std::move(pubkey.error()));
  address.pubkey = *pubkey;
  if (!records->kind) return make_error(ErrorCode::kInvalidInput, "naddr: missing kind (TLV 3)");
  auto kind = kind_value(*records->kind, kHrp);
  if (!kind) return tl::unexpected(std::move(kind.error()));
  address.kind = *kind;
  auto relays = relay_texts(*records, kHrp);
  if (!relays) return tl::unexpected(std::move(relays.error()));
  address.relays = std::move(*relays);
  return address;
}

Result<std::array<uint8_t, 32>> bare_32(std::span<const uint8_t> payload, std::string_view hrp) {
  if (payload.size() != 32) {
    return make_error(ErrorCode::kInvalidInput,
                      std::string(hrp) + " must hold 32 bytes, got " + std::to_string(payload.size()));
  }
  std::array<uint8_t, 32> out{};
  std::memcpy(out.data(), payload.data(), 32);
  return out;
}

enum class Kind { kNpub, kNsec, kNote, kNprofile, kNevent, kNaddr };

std::optional<Kind> kind_of_prefix(std::string_view hrp) {
  if (hrp == "npub") return Kind::kNpub;
  if (hrp == "nsec") return Kind::kNsec;
  if (hrp == "note") return Kind::kNote;
  if (hrp == "nprofile") return Kind::kNprofile;
  if (hrp == "nevent") return Kind::kNevent;
  if (hrp == "naddr") return Kind::kNaddr;
  return std::nullopt;
}

// Wipes a buffer on scope exit when it may hold a secret key, whichever return path is taken.
class ScopedWipe {
 public:
  ScopedWipe(std::vector<uint8_t>& buffer, bool enabled) : buffer_(buffer), enabled_(enabled) {}
  ScopedWipe(const ScopedWipe&) = delete;
  ScopedWipe& operator=(const ScopedWipe&) = delete;
  ~ScopedWipe() {
    if (enabled_) OPENSSL_cleanse(buffer_.data(), buffer_.size());
  }

 private:
  std::vector<uint8_t>& buffer_;
  bool enabled_;
};

}  // namespace

std::string encode_npub(std::span<const uint8_t, 32> pubkey) {
  return bech32_encode("npub", pubkey);
}

std::string encode_nsec(std::span<const uint8_t, 32> secret) {
  return bech32_encode("nsec", secret, /*secret=*/true);
}

std::string encode_note(std::span<const uint8_t, 32> event_id) {
  return bech32_encode("note", event_id);
}

// Record order mirrors nostr-tools (it writes its TLV object's keys in reverse: 3, 2, 1, 0) so our strings
// are byte-identical to what most clients produce; any order decodes.
Result<std::string> encode_nprofile(const ProfilePointer& profile) {
  TlvWriter w("nprofile");
  if (auto st = w.add_relays(profile.relays); !st) return tl::unexpected(std::move(st.error()));
  if (auto st = w.add(kTlvSpecial, profile.pubkey, "pubkey"); !st)
    return tl::unexpected(std::move(st.error()));
  return w.finish();
}

Result<std::string> encode_nevent(const EventPointer& event) {
  TlvWriter w("nevent");
  if (event.kind) {
    if (auto st = w.add_kind(*event.kind); !st) return tl::unexpected(std::move(st.error()));
  }
  if (event.author) {
    if (auto st = w.add(kTlvAuthor, *event.author, "author"); !st)
      return tl::unexpected(std::move(st.error()));
  }
  if (auto st = w.add_relays(event.relays); !st) return tl::unexpected(std::move(st.error()));
  if (auto st = w.add(kTlvSpecial, event.id, "event id"); !st) return tl::unexpected(std::move(st.error()));
  return w.finish();
}

Result<std::string> encode_naddr(const AddressPointer& address) {
  TlvWriter w("naddr");
  if (auto st = w.add_kind(address.kind); !st) return tl::unexpected(std::move(st.error()));
  if (auto st = w.add(kTlvAuthor, address.pubkey, "pubkey"); !st)
    return tl::unexpected(std::move(st.error()));
  if (auto st = w.add_relays(address.relays); !st) return tl::unexpected(std::move(st.error()));
  if (auto st = w.add_text(kTlvSpecial, address.identifier, "identifier"); !st) {
    return tl::unexpected(std::move(st.error()));
  }
  return w.finish();
}

Result<Entity> decode(std::string_view text) {
  if (text.empty()) return make_error(ErrorCode::kInvalidInput, "empty string");
  if (text.size() > kMaxEncodedLength) {
    return make_error(ErrorCode::kLimitExceeded, "too long: " + std::to_string(text.size()) +
                                                     " characters, the limit is " +
                                                     std::to_string(kMaxEncodedLength));
  }
  if (text.size() < kMinEncodedLength) {
    return make_error(ErrorCode::kInvalidInput,
                      "too short: " + std::to_string(text.size()) + " characters, bech32 needs at least 8");
  }

  // Bech32 is printable ASCII in one case; a mixed-case string is refused because case flips would otherwise
  // give one entity many spellings.
  bool has_lower = false;
  bool has_upper = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<uint8_t>(text[i]);
    if (c < 33 || c > 126) {
      static constexpr std::string_view kHex = "0123456789abcdef";
      return make_error(ErrorCode::kInvalidInput, std::string("invalid character (byte 0x") + kHex[c >> 4] +
                                                      kHex[c & 0xf] + ") at position " + std::to_string(i));
    }
    has_lower = has_lower || (c >= 'a' && c <= 'z');
    has_upper = has_upper || (c >= 'A' && c <= 'Z');
  }
  if (has_lower && has_upper) return make_error(ErrorCode::kInvalidInput, "mixed case");
  std::string lowered(text);
  for (char& c : lowered) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }

  // The separator is the last '1': the prefix may contain '1' but the data alphabet cannot.
  const size_t sep = lowered.rfind('1');
  if (sep == std::string::npos) return make_error(ErrorCode::kInvalidInput, "no separator '1'");
  if (sep == 0) return make_error(ErrorCode::kInvalidInput, "empty prefix before separator '1'");
  const std::string_view hrp = std::string_view(lowered).substr(0, sep);
  const std::string_view data = std::string_view(lowered).substr(sep + 1);
  if (data.size() < kChecksumWords) {
    return make_error(ErrorCode::kInvalidInput, "data part has " + std::to_string(data.size()) +
                                                    " characters, fewer than the 6-character checksum");
  }

  const std::optional<Kind> kind = kind_of_prefix(hrp);
  // 5-bit words of an nsec are the secret key in another base; wipe them on the way out.
  std::vector<uint8_t> words;
  const ScopedWipe wipe_words(words, kind == Kind::kNsec);
  words.reserve(data.size());
  for (size_t i = 0; i < data.size(); ++i) {
    const auto c = static_cast<uint8_t>(data[i]);
    const int8_t v = c < kCharsetRev.size() ? kCharsetRev[c] : -1;
    if (v < 0) {
      return make_error(ErrorCode::kInvalidInput, std::string("invalid character '") + text[sep + 1 + i] +
                                                      "' at position " + std::to_string(sep + 1 + i));
    }
    words.push_back(static_cast<uint8_t>(v));
  }

  uint32_t chk = prefix_checksum_state(hrp);
  for (uint8_t w : words)
    chk = polymod_step(chk) ^ w;
  if (chk != kBech32Constant) {
    if (chk == kBech32mConstant) {
      return make_error(ErrorCode::kInvalidInput,
                        "bad bech32 checksum (this is bech32m, which NIP-19 does not use)");
    }
    return make_error(ErrorCode::kInvalidInput, "bad bech32 checksum");
  }

  if (!kind) {
    // Long prefixes are cut so an error message stays readable.
    constexpr size_t kShownPrefix = 32;
    std::string shown(hrp.substr(0, kShownPrefix));
    if (hrp.size() > kShownPrefix) shown += "...";
    return make_error(ErrorCode::kUnsupported, "unknown prefix '" + shown + "'");
  }

  auto payload = from_words(std::span<const uint8_t>(words).first(words.size() - kChecksumWords));
  if (!payload) return tl::unexpected(std::move(payload.error()));
  const ScopedWipe wipe_payload(*payload, kind == Kind::kNsec);

  switch (*kind) {
    case Kind::kNpub: {
      auto key = bare_32(*payload, hrp);
      if (!key) return tl::unexpected(std::move(key.error()));
      return Npub{*key};
    }
    case Kind::kNsec: {
      auto key = bare_32(*payload, hrp);
      if (!key) return tl::unexpected(std::move(key.error()));
      Entity entity = Nsec{*key};
      OPENSSL_cleanse(key->data(), key->size());
      return entity;
    }
    case Kind::kNote: {
      auto id = bare_32(*payload, hrp);
      if (!id) return tl::unexpected(std::move(id.error()));
      return Note{*id};
    }
    case Kind::kNprofile:
      return decode_nprofile(*payload);
    case Kind::kNevent:
      return decode_nevent(*payload);
    case Kind::kNaddr:
      return decode_naddr(*payload);
  }
  return make_error(ErrorCode::kInternal, "unreachable prefix kind");
}

std::string_view entity_type(const Entity& entity) {
  static constexpr std::array<std::string_view, std::variant_size_v<Entity>> kNames = {
      "npub", "nsec", "note", "nprofile", "nevent", "naddr"};
  return kNames[entity.index()];
}

}  // namespace infernet::nostr::nip19
