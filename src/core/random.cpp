#include "core/random.hpp"

#include <array>

#include "core/encoding.hpp"

#include <sys/random.h>

#include <cerrno>
#include <stdexcept>

namespace infernet {

void fill_random(std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = getrandom(out.data() + done, out.size() - done, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error("getrandom failed");
    }
    done += static_cast<size_t>(n);
  }
}

std::string random_hex_id() {
  std::array<uint8_t, 16> bytes{};
  fill_random(bytes);
  return hex_encode(bytes);
}

}  // namespace infernet
