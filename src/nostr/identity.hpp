// A node's identity on disk, and the textual forms of keys people paste in.
//
// The key file holds one line, the nsec (NIP-19) of the secret key. It is created with mode 0600 inside a
// 0700 directory, and reading refuses a file that group or others can read: a leaked key is an identity and a
// wallet lost, so a mistake in permissions stops the program instead of being ignored. Thread-safe (no shared
// state).
#pragma once

#include <string>
#include <string_view>

#include "core/result.hpp"
#include "nostr/keys.hpp"

namespace infernet::nostr {

// Accepts "nsec1..." or 64 lower-case hex characters, surrounding whitespace ignored.
// Errors: kInvalidInput naming the problem (bad checksum, not an nsec, not a valid secret).
Result<Keypair> parse_secret_key(std::string_view text);

// Accepts "npub1..." or 64 lower-case hex characters, surrounding whitespace ignored.
// Errors: kInvalidInput (bad encoding, or not a point on the curve).
Result<PublicKey> parse_public_key(std::string_view text);

// Writes the key atomically (temporary file, fsync, then link into place). Creates missing parent directories
// with mode 0700. Errors: kAlreadyExists unless `overwrite`; kIo with the path and the system's reason.
Status write_key_file(const std::string& path, const Keypair& keys, bool overwrite);

// Errors: kNotFound; kPermissionDenied when the mode allows group or others any access (the message says
// which chmod fixes it); kInvalidInput when the content is not a key; kIo.
Result<Keypair> read_key_file(const std::string& path);

}  // namespace infernet::nostr
