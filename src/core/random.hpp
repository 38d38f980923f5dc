// Bytes from the operating system's CSPRNG (getrandom(2)). Thread-safe. Throws only if the kernel refuses,
// which is a start-up-class failure: nothing secret may be generated without it.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace infernet {

void fill_random(std::span<uint8_t> out);
// 16 random bytes as 32 lower-case hex characters: an id nobody else will pick.
std::string random_hex_id();

}  // namespace infernet
