// The signature on a webhook delivery (docs/api.md, "Webhooks"): HMAC-SHA256 of "<timestamp>.<body>" under
// the webhook's secret (its bytes as written), sent as "Infernet-Signature: t=<unix seconds>,v1=<hex>".
// Receivers recompute it over the raw body and compare in constant time.
//
// Thread-safe: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace infernet::notify {

// Lower-case hex of HMAC-SHA256(secret, "<timestamp>.<body>").
std::string sign_delivery(std::string_view secret, int64_t timestamp, std::string_view body);

// The Infernet-Signature header value: "t=<timestamp>,v1=<sign_delivery(...)>".
std::string signature_header(std::string_view secret, int64_t timestamp, std::string_view body);

// Checks a header value against the body, as a receiver would: the "t" and "v1" parts, the signature (in
// constant time), and that t is within `tolerance_s` of `now`. Errors: kInvalidInput naming what is wrong
// ("signature: malformed", "signature: does not match", "signature: timestamp outside the tolerance").
Status verify_signature(std::string_view secret, std::string_view header, std::string_view body, int64_t now,
                        int64_t tolerance_s = 300);

// A new secret: "whsec_" and 64 hex digits (32 random bytes).
std::string new_webhook_secret();

}  // namespace infernet::notify
