#include "engine/llama/model_catalog.hpp"

#include <ggml.h>
#include <gguf.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <system_error>

#include "core/encoding.hpp"
#include "core/log.hpp"
#include "core/sha256.hpp"

namespace infernet::engine::llama {
namespace fs = std::filesystem;
namespace {

struct GgufFree {
  void operator()(gguf_context* c) const { gguf_free(c); }
};

Error bad_file(const fs::path& path, const std::string& what) {
  return Error{ErrorCode::kInvalidInput, path.filename().string() + ": " + what};
}

std::string string_value(const gguf_context* g, const std::string& key) {
  const int64_t id = gguf_find_key(g, key.c_str());
  if (id < 0 || gguf_get_kv_type(g, id) != GGUF_TYPE_STRING) return "";
  return gguf_get_val_str(g, id);
}

uint64_t unsigned_value(const gguf_context* g, const std::string& key) {
  const int64_t id = gguf_find_key(g, key.c_str());
  if (id < 0) return 0;
  switch (gguf_get_kv_type(g, id)) {
    case GGUF_TYPE_UINT32:
      return gguf_get_val_u32(g, id);
    case GGUF_TYPE_INT32:
      return static_cast<uint64_t>(std::max<int32_t>(0, gguf_get_val_i32(g, id)));
    case GGUF_TYPE_UINT64:
      return gguf_get_val_u64(g, id);
    case GGUF_TYPE_INT64:
      return static_cast<uint64_t>(std::max<int64_t>(0, gguf_get_val_i64(g, id)));
    default:
      return 0;
  }
}

int64_t mtime_ns(const fs::path& path, std::error_code& ec) {
  const auto t = fs::last_write_time(path, ec);
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

Result<GgufInfo> read_gguf_info(const fs::path& path) {
  std::error_code ec;
  const uint64_t size = fs::file_size(path, ec);
  if (ec) return tl::unexpected(bad_file(path, "cannot read: " + ec.message()));
  // The header is read without the tensor data (no_alloc, no ggml context): bounded work however large the
  // file. gguf_init_from_file refuses bad magic, versions, counts and types itself.
  gguf_init_params params{.no_alloc = true, .ctx = nullptr};
  std::unique_ptr<gguf_context, GgufFree> g(gguf_init_from_file(path.c_str(), params));
  if (!g) return tl::unexpected(bad_file(path, "not a valid GGUF file (bad or truncated header)"));

  GgufInfo info;
  info.name = path.stem().string();
  info.path = path;
  info.file_bytes = size;
  info.architecture = string_value(g.get(), "general.architecture");
  if (info.architecture.empty()) return tl::unexpected(bad_file(path, "no general.architecture"));
  info.display_name = string_value(g.get(), "general.name");
  info.context_length = static_cast<uint32_t>(
      std::min<uint64_t>(UINT32_MAX, unsigned_value(g.get(), info.architecture + ".context_length")));
  info.chat_template = string_value(g.get(), "tokenizer.chat_template");

  const int64_t n_tensors = gguf_get_n_tensors(g.get());
  if (n_tensors <= 0) return tl::unexpected(bad_file(path, "has no tensors"));
  const uint64_t data_offset = gguf_get_data_offset(g.get());
  std::map<std::string, uint64_t> weight_types;  // type name -> parameters in 2-D tensors of that type
  for (int64_t i = 0; i < n_tensors; ++i) {
    const uint64_t end = data_offset + gguf_get_tensor_offset(g.get(), i) + gguf_get_tensor_size(g.get(), i);
    if (end > size) {
      return tl::unexpected(
          bad_file(path, "truncated: tensor '" + std::string(gguf_get_tensor_name(g.get(), i)) +
                             "' ends at byte " + std::to_string(end) + " of " + std::to_string(size)));
    }
    const int64_t* ne = gguf_get_tensor_ne(g.get(), i);
    uint64_t n = 1;
    for (int d = 0; d < GGML_MAX_DIMS; ++d)
      n *= static_cast<uint64_t>(ne[d]);
    info.parameters += n;
    if (ne[1] > 1) weight_types[ggml_type_name(gguf_get_tensor_type(g.get(), i))] += n;
  }
  // The file's own type name (general.file_type) is llama.cpp's ftype enum; the tensors say the same in
  // plain words, and for mixed files the majority is what a user means by "a q4_0 model".
  uint64_t best = 0;
  for (const auto& [type, n] : weight_types) {
    if (n > best) {
      best = n;
      info.quantization = type;
    }
  }
  return info;
}

void FingerprintCache::load() {
  loaded_ = true;
  if (file_.empty()) return;
  std::ifstream in(file_);
  std::string line;
  // One entry per line: size, mtime in ns, sha256, path (last: it may contain spaces).
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    Entry e;
    if (!(fields >> e.size >> e.mtime_ns >> e.sha256)) continue;
    fields.get();
    std::getline(fields, e.path);
    if (e.sha256.size() != 64 || e.path.empty()) continue;
    entries_.push_back(std::move(e));
  }
}

void FingerprintCache::save() const {
  if (file_.empty()) return;
  const fs::path tmp = file_.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (const Entry& e : entries_)
      out << e.size << ' ' << e.mtime_ns << ' ' << e.sha256 << ' ' << e.path << '\n';
    if (!out) {
      spdlog::warn("fingerprint cache {}: cannot write", tmp.string());
      return;
    }
  }
  std::error_code ec;
  fs::rename(tmp, file_, ec);
  if (ec) spdlog::warn("fingerprint cache {}: {}", file_.string(), ec.message());
}

Result<std::string> FingerprintCache::fingerprint(const fs::path& path) {
  if (!loaded_) load();
  std::error_code ec;
  const std::string key = fs::absolute(path, ec).string();
  const uint64_t size = fs::file_size(path, ec);
  if (ec) return make_error(ErrorCode::kIo, path.string() + ": " + ec.message());
  const int64_t mtime = mtime_ns(path, ec);
  if (ec) return make_error(ErrorCode::kIo, path.string() + ": " + ec.message());
  auto it = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.path == key; });
  if (it != entries_.end() && it->size == size && it->mtime_ns == mtime) return it->sha256;
  auto hash = sha256_file(path.string());
  if (!hash) return tl::unexpected(hash.error());
  ++computed_;
  Entry e{key, size, mtime, hex_encode(*hash)};
  if (it != entries_.end()) {
    *it = e;
  } else {
    entries_.push_back(e);
  }
  save();
  return e.sha256;
}

Result<Catalog> scan_models(const fs::path& dir, FingerprintCache& cache) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) return make_error(ErrorCode::kIo, "models directory " + dir.string() + ": " + ec.message());
  std::vector<fs::path> files;
  for (const auto& entry : it) {
    if (entry.path().extension() == ".gguf" && entry.is_regular_file(ec)) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  Catalog catalog;
  for (const fs::path& path : files) {
    auto info = read_gguf_info(path);
    if (info) {
      auto sha = cache.fingerprint(path);
      if (sha) {
        info->sha256 = std::move(*sha);
        catalog.models.push_back(std::move(*info));
        continue;
      }
      info = tl::unexpected(sha.error());
    }
    spdlog::warn("models: skipping {}: {}", path.string(), info.error().message);
    catalog.skipped.push_back({path, info.error().message});
  }
  return catalog;
}

}  // namespace infernet::engine::llama
