// Result<T> and Error: how every fallible operation in Infernet reports failure.
//
// Errors that are part of normal operation (bad input, a bad signature, a missing file) are values, never
// exceptions. An Error carries a code that callers branch on and a message meant for a person; the message
// names the field or the problem, e.g. "id: must be 64 lowercase hex characters".
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include <tl/expected.hpp>

namespace infernet {

enum class ErrorCode {
  kInvalidInput,      // malformed or out-of-range input: bad JSON, bad hex, wrong length, bad checksum
  kInvalidSignature,  // well-formed, but the signature does not verify
  kInvalidId,         // an event's id is not the hash of its contents
  kDecryptFailed,     // authentication failed or the payload is not decryptable
  kUnauthorized,      // an auth token was well-formed but does not grant access (wrong URL, method, time)
  kUnsupported,       // a version, algorithm or option this build does not implement
  kLimitExceeded,     // input larger than a configured or protocol limit
  kNotFound,
  kPermissionDenied,  // includes files whose permissions are unsafe
  kAlreadyExists,
  kIo,
  kInternal,  // a bug or an unexpected library failure
};

// Stable lower-case name of a code, used in logs and machine-readable output.
std::string_view error_code_name(ErrorCode code);

struct Error {
  ErrorCode code;
  std::string message;

  // "<code name>: <message>"
  std::string to_string() const;
};

template <class T>
using Result = tl::expected<T, Error>;

// For operations that return nothing on success.
using Status = Result<void>;

inline tl::unexpected<Error> make_error(ErrorCode code, std::string message) {
  return tl::unexpected<Error>(Error{code, std::move(message)});
}

// Adds context in front of an error's message, keeping its code: "key file: <message>".
inline Error with_context(Error e, std::string_view context) {
  e.message.insert(0, std::string(context) + ": ");
  return e;
}

}  // namespace infernet
