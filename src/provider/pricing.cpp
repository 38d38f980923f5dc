#include "provider/internal/pricing.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>

namespace infernet::provider::internal {
namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

uint64_t saturating_add(uint64_t a, uint64_t b) {
  return a > kMax - b ? kMax : a + b;
}

// Exact a * b / divisor in 128 bits, saturated to 64.
__extension__ using Wide = unsigned __int128;
uint64_t scaled(uint64_t a, uint64_t b, uint64_t divisor) {
  const Wide v = static_cast<Wide>(a) * b / divisor;
  return v > kMax ? kMax : static_cast<uint64_t>(v);
}

uint64_t with_priority(const protocol::Prices& prices, std::string_view priority, uint64_t base,
                       uint32_t discount_percent) {
  auto it = prices.priority_percent.find(std::string(protocol::canonical_priority(priority)));
  const uint64_t percent = it == prices.priority_percent.end() ? 100 : it->second;
  const uint64_t kept = 100 - std::min<uint32_t>(discount_percent, 100);
  // One division, so a discount and a multiplier together round once.
  return scaled(base, percent * kept, 10'000);
}

}  // namespace

uint32_t count_words(std::string_view text) {
  uint32_t words = 0;
  bool in_word = false;
  for (char c : text) {
    const bool space = std::isspace(static_cast<unsigned char>(c)) != 0;
    if (!space && !in_word) ++words;
    in_word = !space;
  }
  return words;
}

uint64_t estimate_cost(const protocol::Prices& prices, std::string_view priority, uint32_t input_tokens,
                       uint32_t max_tokens, uint32_t discount_percent) {
  uint64_t base = prices.per_job_msat;
  base = saturating_add(base, scaled(prices.per_1k_input_msat, input_tokens, 1000));
  base = saturating_add(base, scaled(prices.per_1k_output_msat, max_tokens, 1000));
  return with_priority(prices, priority, base, discount_percent);
}

uint64_t actual_cost(const protocol::Prices& prices, std::string_view priority, uint32_t input_tokens,
                     uint32_t output_tokens, double seconds, uint64_t cap_msat, uint32_t discount_percent) {
  uint64_t base = prices.per_job_msat;
  base = saturating_add(base, scaled(prices.per_1k_input_msat, input_tokens, 1000));
  base = saturating_add(base, scaled(prices.per_1k_output_msat, output_tokens, 1000));
  if (prices.per_second_msat > 0 && seconds > 0) {
    // Whole milliseconds of engine time, so the charge does not depend on the clock's resolution.
    const double ms = std::floor(seconds * 1000.0);
    const uint64_t ms_int = ms >= 1e18 ? kMax : static_cast<uint64_t>(ms);
    base = saturating_add(base, scaled(prices.per_second_msat, ms_int, 1000));
  }
  const uint64_t cost = with_priority(prices, priority, base, discount_percent);
  return cap_msat != 0 && cost > cap_msat ? cap_msat : cost;
}

}  // namespace infernet::provider::internal
