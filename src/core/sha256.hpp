// SHA-256 over OpenSSL's EVP interface.
//
// The digest implementation is fetched once per process and each thread reuses its own EVP_MD_CTX: a fresh
// EVP_sha256() lookup per call costs about 40% of hashing a short event. Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace infernet {

using Hash32 = std::array<uint8_t, 32>;

Hash32 sha256(std::span<const uint8_t> data);
Hash32 sha256(std::string_view data);

// SHA-256 of a whole file, read in 1 MiB blocks. kIo naming the file when it cannot be read.
Result<Hash32> sha256_file(const std::string& path);

// HMAC-SHA256(key, data...) over the concatenation of the parts. Thread-safe.
Hash32 hmac_sha256(std::span<const uint8_t> key, std::initializer_list<std::span<const uint8_t>> parts);

}  // namespace infernet
