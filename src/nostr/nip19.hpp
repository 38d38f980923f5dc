// NIP-19: bech32-encoded Nostr entities (npub, nsec, note, nprofile, nevent, naddr).
//
// Byte-compatible with nostr-tools 2.25.2: for the same input our encoders produce the same string, and every
// string nostr-tools decodes to an entity we support decodes here to the same values. The checksum is bech32
// (BIP-173), not bech32m, and strings may be up to kMaxEncodedLength characters instead of BIP-173's 90,
// because TLV entities with relay hints do not fit in 90.
//
// TLV entities (nprofile, nevent, naddr) carry type-length-value records: 0 is the "special" value (pubkey,
// event id or d-tag identifier), 1 a relay URL (repeatable), 2 an author pubkey, 3 a kind (u32 big-endian).
// Encoders write them in nostr-tools' order, highest type first (3, 2, 1..., 0), which is not the order of
// the examples in the NIP text; decoders accept any order and skip unknown types, as the NIP requires.
//
// Where we are stricter than nostr-tools (on purpose, so a malformed string cannot decode to a surprising
// value): npub, nsec and note must hold exactly 32 bytes; relay URLs and identifiers must be valid UTF-8
// (nostr-tools substitutes U+FFFD); encoders refuse a TLV value over 255 bytes (nostr-tools silently writes a
// wrong length). Public keys are length-checked only, not validated as curve points; use
// PublicKey::from_bytes for that.
//
// Thread-safety: every function is pure and safe to call concurrently; the types are plain values.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/result.hpp"

namespace infernet::nostr::nip19 {

// Longest string accepted or produced, in characters (nostr-tools' Bech32MaxSize).
inline constexpr size_t kMaxEncodedLength = 5000;
// Longest value one TLV record can hold: its length field is a single byte.
inline constexpr size_t kMaxTlvValueLength = 255;

struct Npub {
  std::array<uint8_t, 32> key;
  friend bool operator==(const Npub&, const Npub&) = default;
};

// A secret key. Plain value: it is not wiped on destruction; move it into a Keypair promptly.
struct Nsec {
  std::array<uint8_t, 32> key;
  friend bool operator==(const Nsec&, const Nsec&) = default;
};

struct Note {
  std::array<uint8_t, 32> id;
  friend bool operator==(const Note&, const Note&) = default;
};

struct ProfilePointer {
  std::array<uint8_t, 32> pubkey;
  std::vector<std::string> relays;
  friend bool operator==(const ProfilePointer&, const ProfilePointer&) = default;
};

struct EventPointer {
  std::array<uint8_t, 32> id;
  std::vector<std::string> relays;
  std::optional<std::array<uint8_t, 32>> author;
  std::optional<uint32_t> kind;
  friend bool operator==(const EventPointer&, const EventPointer&) = default;
};

struct AddressPointer {
  std::string identifier;  // the d tag; may be empty
  std::array<uint8_t, 32> pubkey;
  uint32_t kind;
  std::vector<std::string> relays;
  friend bool operator==(const AddressPointer&, const AddressPointer&) = default;
};

using Entity = std::variant<Npub, Nsec, Note, ProfilePointer, EventPointer, AddressPointer>;

// Lower-case bech32 of 32 bytes under the "npub", "nsec" or "note" prefix. Cannot fail.
std::string encode_npub(std::span<const uint8_t, 32> pubkey);
std::string encode_nsec(std::span<const uint8_t, 32> secret);
std::string encode_note(std::span<const uint8_t, 32> event_id);

// TLV entities. Relays are written in the order given, empty strings included, as nostr-tools does.
// Errors: kInvalidInput when a relay URL or the identifier is not valid UTF-8; kLimitExceeded when one of
// them is longer than kMaxTlvValueLength bytes or the whole string would exceed kMaxEncodedLength characters.
Result<std::string> encode_nprofile(const ProfilePointer& profile);
// Writes TLV 2 only when `author` is set and TLV 3 only when `kind` is set (kind 0 included).
Result<std::string> encode_nevent(const EventPointer& event);
Result<std::string> encode_naddr(const AddressPointer& address);

// Decodes any of the six entities. Accepts all-lower-case or all-upper-case input, as bech32 does.
// Errors:
//   kLimitExceeded: longer than kMaxEncodedLength ("too long").
//   kUnsupported:   a well-formed bech32 string whose prefix is none of the six ("unknown prefix 'lnbc'").
//   kInvalidInput:  everything else, with a message naming the problem: too short, mixed case, no separator,
//                   invalid character at a position, bad bech32 checksum, non-zero or excess padding bits,
//                   wrong payload length ("npub must hold 32 bytes, got 31"), TLV truncated, a missing or
//                   wrong-sized required TLV ("nprofile: missing pubkey (TLV 0)"), invalid UTF-8.
Result<Entity> decode(std::string_view text);

// "npub", "nsec", "note", "nprofile", "nevent" or "naddr": the prefix the entity is encoded under.
std::string_view entity_type(const Entity& entity);

}  // namespace infernet::nostr::nip19
