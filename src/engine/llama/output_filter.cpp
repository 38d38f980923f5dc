#include "engine/llama/output_filter.hpp"

#include <algorithm>

namespace infernet::engine::llama {

size_t complete_utf8_prefix(std::string_view s) {
  // Look back at most 3 bytes for the lead byte of a character that is still open.
  const size_t n = s.size();
  for (size_t back = 1; back <= std::min<size_t>(3, n); ++back) {
    const auto c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: keep looking for its lead
    size_t need = 1;
    if ((c & 0xE0) == 0xC0) {
      need = 2;
    } else if ((c & 0xF0) == 0xE0) {
      need = 3;
    } else if ((c & 0xF8) == 0xF0) {
      need = 4;
    }
    return back < need ? n - back : n;
  }
  return n;
}

void OutputFilter::resume_after(std::string_view shown) {
  size_t longest = 0;
  for (const std::string& s : stop_)
    longest = std::max(longest, s.size());
  const size_t keep = std::min(shown.size(), longest == 0 ? 0 : longest - 1);
  context_.assign(shown.substr(shown.size() - keep));
}

std::string OutputFilter::push(std::string_view bytes) {
  if (stopped_) return {};
  pending_.append(bytes);
  // The resumed context counts for matching only: it was shown before, so it is never returned.
  const std::string text = context_ + pending_;
  const size_t ctx = context_.size();
  // A complete stop sequence (not lying wholly in the context): show what precedes the earliest one, and
  // end.
  size_t cut = std::string::npos;
  for (const std::string& s : stop_) {
    const size_t from = ctx >= s.size() ? ctx - s.size() + 1 : 0;
    cut = std::min(cut, text.find(s, from));
  }
  if (cut != std::string::npos) {
    stopped_ = true;
    std::string out = cut > ctx ? text.substr(ctx, cut - ctx) : std::string();
    pending_.clear();
    context_.clear();
    return out;
  }
  // Hold back the longest tail that is a proper prefix of some stop sequence.
  size_t hold = 0;
  for (const std::string& s : stop_) {
    for (size_t k = std::min(s.size() - 1, text.size()); k > hold; --k) {
      if (std::string_view(text).substr(text.size() - k) == std::string_view(s).substr(0, k)) {
        hold = k;
        break;
      }
    }
  }
  hold = std::min(hold, pending_.size());
  const size_t show = complete_utf8_prefix(std::string_view(pending_).substr(0, pending_.size() - hold));
  std::string out = pending_.substr(0, show);
  pending_.erase(0, show);
  if (show > 0) context_.clear();
  return out;
}

std::string OutputFilter::finish() {
  if (stopped_) return {};
  std::string out = pending_.substr(0, complete_utf8_prefix(pending_));
  pending_.clear();
  return out;
}

}  // namespace infernet::engine::llama
