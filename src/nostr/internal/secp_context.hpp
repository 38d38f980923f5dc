// The process-wide libsecp256k1 context (internal to the nostr module).
#pragma once

#include <secp256k1.h>

namespace infernet::nostr::internal {

// Created and randomized on first use; never destroyed (it outlives every thread that may use it).
const secp256k1_context* secp_context();

}  // namespace infernet::nostr::internal
