// Turns the bytes a model generates, token by token, into the text a client may see: whole UTF-8 characters
// only (a token can end mid-character), and never any part of a stop sequence. Text that could still become
// a stop sequence is held back until the next token decides it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace infernet::engine::llama {

class OutputFilter {
 public:
  explicit OutputFilter(std::vector<std::string> stop) : stop_(std::move(stop)) {}

  // Adds one token's bytes. Returns the text that is now safe to show (possibly empty). After a stop
  // sequence completes, stopped() is true, the text before it has been returned, and later calls return "".
  std::string push(std::string_view bytes);
  // The end of generation: whatever is held back is shown (a partial UTF-8 character is dropped).
  std::string finish();
  // Before the first push of a resumed run: `shown` is the output an earlier run already delivered. A stop
  // sequence that begins in it and ends in the new tokens stops the run too (nothing more is shown).
  void resume_after(std::string_view shown);

  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stop_;
  std::string pending_;  // generated, not yet shown
  // The tail of earlier shown output that a stop sequence may still begin in: only until the next text is
  // shown, since shown text is known not to begin one.
  std::string context_;
  bool stopped_ = false;
};

// Length of the longest prefix of `s` that does not end inside a UTF-8 character (invalid bytes count as
// whole characters so that a broken byte never holds the stream back forever).
size_t complete_utf8_prefix(std::string_view s);

}  // namespace infernet::engine::llama
