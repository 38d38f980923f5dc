#include "engine/engine.hpp"

namespace infernet::engine {

const char* to_string(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kBudget:
      return "budget";
  }
  return "length";
}

}  // namespace infernet::engine
