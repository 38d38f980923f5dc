// The models directory of a llama provider: every *.gguf file in it, described from its GGUF header (never
// by loading the weights), with a sha256 fingerprint computed once per file version and cached.
//
// A file that is not a GGUF, is truncated, or lacks what a llama.cpp model needs is reported and skipped:
// one bad file never stops a provider from serving the good ones.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace infernet::engine::llama {

struct GgufInfo {
  std::string name;  // the file name without ".gguf": what consumers ask for
  std::filesystem::path path;
  uint64_t file_bytes = 0;
  std::string architecture;     // general.architecture, e.g. "llama"
  std::string display_name;     // general.name, or ""
  uint64_t parameters = 0;      // summed from the tensor shapes
  std::string quantization;     // the most common weight type among 2-D tensors, e.g. "q8_0", "f16"
  uint32_t context_length = 0;  // <arch>.context_length, 0 if absent
  std::string chat_template;    // tokenizer.chat_template, "" if absent
  std::string sha256;           // hex of the whole file
};

// Reads one file's header. Errors (kInvalidInput, naming the file and the problem): not a GGUF, an
// unreadable header, tensor data that extends past the end of the file (truncated), no architecture, no
// tensors. The fingerprint is not computed here.
Result<GgufInfo> read_gguf_info(const std::filesystem::path& path);

// A file's fingerprint, remembered by (path, size, modification time) in a small text file so that a
// restart does not hash gigabytes again. The cache is rewritten whole (write then rename) when it changes.
class FingerprintCache {
 public:
  explicit FingerprintCache(std::filesystem::path file) : file_(std::move(file)) {}
  // The sha256 of `path` (hex), from the cache when size and mtime match, else computed and remembered.
  Result<std::string> fingerprint(const std::filesystem::path& path);
  // How many fingerprints were computed (not cached) by this object: for tests.
  size_t computed() const { return computed_; }

 private:
  struct Entry {
    std::string path;
    uint64_t size = 0;
    int64_t mtime_ns = 0;
    std::string sha256;
  };
  void load();
  void save() const;

  std::filesystem::path file_;
  std::vector<Entry> entries_;
  bool loaded_ = false;
  size_t computed_ = 0;
};

struct CatalogProblem {
  std::filesystem::path path;
  std::string error;
};

struct Catalog {
  std::vector<GgufInfo> models;  // sorted by name
  std::vector<CatalogProblem> skipped;
};

// Every *.gguf directly in `dir`, described and fingerprinted. Errors only when `dir` cannot be listed;
// bad files land in `skipped` with the reason (and a warning in the log).
Result<Catalog> scan_models(const std::filesystem::path& dir, FingerprintCache& cache);

}  // namespace infernet::engine::llama
